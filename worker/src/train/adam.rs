//! Adam, as PyTorch's default `torch.optim.Adam` computes it (no weight decay, no amsgrad), with
//! its state in tensors we own so that checkpoints can save and restore it exactly.
//!
//! On the CPU the update is one fused pass over each parameter, its gradient and both moments
//! (28 bytes of memory traffic per parameter), vectorised with AVX2 where the CPU has it. Written
//! with libtorch's element-wise operations it took 8 passes (about 100 bytes per parameter) and 8
//! dispatches per tensor, which was most of a step on lab 1's CIFAR shapes. Every path performs
//! the same IEEE operations per element in the same order (no fused multiply-add), so the results
//! are bit for bit the same whichever path runs. On other devices the update is libtorch's
//! element-wise operations.

use tch::{Device, Kind, Tensor};

use super::TrainError;

/// Adam's hyperparameters and state.
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Steps taken so far.
    pub(super) step: i64,
    /// First moments, one per parameter.
    pub(super) exp_avg: Vec<Tensor>,
    /// Second moments, one per parameter.
    pub(super) exp_avg_sq: Vec<Tensor>,
}

/// One step's coefficients, in f32 as the update uses them.
#[derive(Debug, Clone, Copy)]
struct Coefficients {
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    /// 1 / sqrt(1 - beta2^t).
    inv_bias_correction2_sqrt: f32,
    eps: f32,
    /// lr / (1 - beta1^t).
    step_size: f32,
}

impl Adam {
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn new(params: &[&Tensor], lr: f64) -> Result<Self, TrainError> {
        let zeros = |p: &&Tensor| p.f_zeros_like();
        Ok(Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            exp_avg: params.iter().map(zeros).collect::<Result<_, _>>()?,
            exp_avg_sq: params.iter().map(zeros).collect::<Result<_, _>>()?,
        })
    }

    /// Sets the learning rate of the next steps (a schedule's).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The learning rate of the next step.
    #[cfg(test)]
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// One update of `params` from `grads` (one per parameter, same shapes).
    pub fn step(&mut self, params: &mut [Tensor], grads: &[Tensor]) -> Result<(), TrainError> {
        if params.len() != grads.len() || params.len() != self.exp_avg.len() {
            return Err(TrainError::Invalid(format!(
                "adam: {} parameters, {} gradients, state for {}",
                params.len(),
                grads.len(),
                self.exp_avg.len()
            )));
        }
        self.step += 1;
        let t = self.step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(t);
        let bias_correction2_sqrt = (1.0 - self.beta2.powf(t)).sqrt();
        let c = Coefficients {
            one_minus_beta1: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            inv_bias_correction2_sqrt: (1.0 / bias_correction2_sqrt) as f32,
            eps: self.eps as f32,
            step_size: (self.lr / bias_correction1) as f32,
        };
        let mut fused_work = Vec::with_capacity(params.len());
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.exp_avg)
            .zip(&mut self.exp_avg_sq)
        {
            if fused::applies(p, g, m, v) {
                fused_work.push(fused::Slices::of(p, g, m, v)?);
            } else {
                update_with_tensor_ops(p, g, m, v, &c)?;
            }
        }
        let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1);
        fused::update(fused_work, threads, &c);
        Ok(())
    }
}

/// The same update as libtorch element-wise operations (on the GPU, or for tensors the fused
/// pass does not take).
fn update_with_tensor_ops(
    p: &mut Tensor,
    g: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    c: &Coefficients,
) -> Result<(), TrainError> {
    tch::no_grad(|| -> Result<(), TrainError> {
        // m = m + (1 - beta1) (g - m)
        let _ = m.f_lerp_(g, f64::from(c.one_minus_beta1))?;
        // v = beta2 v + (1 - beta2) g^2
        let _ = v.f_mul_scalar_(f64::from(c.beta2))?;
        let _ = v.f_add_(&g.f_square()?.f_mul_scalar_(f64::from(c.one_minus_beta2))?)?;
        // p -= step_size m / (sqrt(v) / sqrt(1 - beta2^t) + eps), as p += m / d with
        // d = -(sqrt(v) / sqrt(1 - beta2^t) + eps) / step_size.
        let step_size = f64::from(c.step_size);
        let mut d = v.f_sqrt()?;
        let _ = d.f_mul_scalar_(-f64::from(c.inv_bias_correction2_sqrt) / step_size)?;
        let _ = d.f_add_scalar_(-f64::from(c.eps) / step_size)?;
        let _ = p.f_addcdiv_(m, &d)?;
        Ok(())
    })
}

/// The fused update over CPU memory.
mod fused {
    use std::sync::Mutex;

    use super::super::pool;
    use super::{Coefficients, Device, Kind, Tensor, TrainError};

    /// Whether the four tensors are CPU f32, contiguous and of one length (the fused pass's
    /// precondition).
    pub(super) fn applies(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor) -> bool {
        let n = p.numel();
        [p, g, m, v].iter().all(|t| {
            t.device() == Device::Cpu
                && t.kind() == Kind::Float
                && t.is_contiguous()
                && t.numel() == n
        })
    }

    /// One parameter's slices: the parameter, its gradient and its two moments.
    pub(in super::super) struct Slices<'a> {
        p: &'a mut [f32],
        g: &'a [f32],
        m: &'a mut [f32],
        v: &'a mut [f32],
    }

    impl<'a> Slices<'a> {
        /// The tensors' memory. The caller checked [`applies`].
        #[allow(unsafe_code)]
        pub(in super::super) fn of(
            p: &'a mut Tensor,
            g: &'a Tensor,
            m: &'a mut Tensor,
            v: &'a mut Tensor,
        ) -> Result<Self, TrainError> {
            let n = p.numel();
            if n == 0 {
                return Ok(Self {
                    p: &mut [],
                    g: &[],
                    m: &mut [],
                    v: &mut [],
                });
            }
            let ptrs = [p.data_ptr(), g.data_ptr(), m.data_ptr(), v.data_ptr()];
            let distinct = (0..4).all(|i| (i + 1..4).all(|j| ptrs[i] != ptrs[j]));
            if !distinct || ptrs.iter().any(|p| p.is_null()) {
                return Err(TrainError::Invalid(
                    "adam: a parameter, its gradient and its moments must be distinct tensors"
                        .into(),
                ));
            }
            // SAFETY: `applies` checked that the four tensors are contiguous CPU f32 tensors of
            // `n` elements, so each pointer addresses `n` initialised, aligned f32s. They are
            // distinct allocations (checked above; the trainer creates each separately, so equal
            // starts are the only way they could overlap). The slices borrow the tensors for
            // their lifetime (`&mut` for the three written), and the trial's tensors are used by
            // the one thread that runs it, so nothing else reads or writes them meanwhile.
            unsafe {
                Ok(Self {
                    p: std::slice::from_raw_parts_mut(ptrs[0].cast::<f32>(), n),
                    g: std::slice::from_raw_parts(ptrs[1].cast::<f32>().cast_const(), n),
                    m: std::slice::from_raw_parts_mut(ptrs[2].cast::<f32>(), n),
                    v: std::slice::from_raw_parts_mut(ptrs[3].cast::<f32>(), n),
                })
            }
        }

        fn len(&self) -> usize {
            self.p.len()
        }

        /// The first `at` elements, and the rest.
        fn split_at(self, at: usize) -> (Self, Self) {
            let (p0, p1) = self.p.split_at_mut(at);
            let (g0, g1) = self.g.split_at(at);
            let (m0, m1) = self.m.split_at_mut(at);
            let (v0, v1) = self.v.split_at_mut(at);
            (
                Self {
                    p: p0,
                    g: g0,
                    m: m0,
                    v: v0,
                },
                Self {
                    p: p1,
                    g: g1,
                    m: m1,
                    v: v1,
                },
            )
        }

        #[allow(unsafe_code)]
        fn update(self, c: &Coefficients) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                unsafe { update_avx2(self.p, self.g, self.m, self.v, c) };
                return;
            }
            update_slices(self.p, self.g, self.m, self.v, c);
        }
    }

    /// Below this many elements in all, the update runs on the calling thread alone: handing
    /// work to the pool costs more than it saves. (Lab 1's Fashion-MNIST model, 0.2 M
    /// parameters, gains from the pool: 0.117 s of Adam per epoch on one thread, 0.058 on two.)
    const PARALLEL_MIN: usize = 1 << 16;

    /// Updates every parameter of `work`, split over `threads` threads (the calling one and
    /// `threads - 1` others of libtorch's OpenMP pool, or scoped threads without one) in equal
    /// shares of elements when there are enough. The update is element-wise, so the split does
    /// not change the result. It is bound by memory bandwidth, which one core alone does not
    /// saturate.
    pub(in super::super) fn update(work: Vec<Slices<'_>>, threads: usize, c: &Coefficients) {
        let total: usize = work.iter().map(Slices::len).sum();
        let threads = threads.clamp(1, 8);
        if threads == 1 || total < PARALLEL_MIN {
            work.into_iter().for_each(|s| s.update(c));
            return;
        }
        let mut shares: Vec<Vec<Slices<'_>>> = Vec::with_capacity(threads);
        let share = total.div_ceil(threads);
        let mut current = Vec::new();
        let mut room = share;
        for mut s in work {
            while s.len() > room {
                let (head, tail) = s.split_at(room);
                current.push(head);
                shares.push(std::mem::take(&mut current));
                room = share;
                s = tail;
            }
            room -= s.len();
            current.push(s);
        }
        shares.push(current);
        let shares: Vec<Mutex<Option<Vec<Slices<'_>>>>> =
            shares.into_iter().map(|s| Mutex::new(Some(s))).collect();
        let take = |i: usize| shares.get(i).and_then(|s| s.lock().ok()?.take());
        let run = |i: usize| take(i).into_iter().flatten().for_each(|s| s.update(c));
        if !pool::run(shares.len(), &run) {
            std::thread::scope(|scope| {
                for i in 1..shares.len() {
                    scope.spawn(move || run(i));
                }
                run(0);
            });
        }
        // The pool may have given fewer threads than asked for: do what is left.
        (0..shares.len()).for_each(run);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn update_avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &Coefficients) {
        update_slices(p, g, m, v, c);
    }

    /// `x`, or 0 when it is subnormal. A weight whose gradient stays 0 (a pixel that is 0 in
    /// every image) sees its first moment decay by 0.9 a step into the subnormal range within
    /// an epoch, where every operation on it takes a slow microcode path: without this the
    /// update ran 2.5 times slower from the second epoch of lab 1's Fashion-MNIST model on.
    #[inline(always)]
    fn flush_subnormal(x: f32) -> f32 {
        if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
    }

    /// The update, element by element; written so that the compiler vectorises it.
    #[inline(always)]
    pub(super) fn update_slices(
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        c: &Coefficients,
    ) {
        let n = p.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            let gi = g[i];
            let mi = m[i] + c.one_minus_beta1 * (gi - m[i]);
            let vi = c.beta2 * v[i] + c.one_minus_beta2 * (gi * gi);
            let (mi, vi) = (flush_subnormal(mi), flush_subnormal(vi));
            m[i] = mi;
            v[i] = vi;
            let denom = vi.sqrt() * c.inv_bias_correction2_sqrt + c.eps;
            p[i] -= c.step_size * (mi / denom);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` values in [-1, 1) from a generator of our own: libtorch's global one is shared with
    /// the tests running alongside, so two draws of the same seed could differ.
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = sweep_common::rng::SplitMix64::new(seed);
        (0..n)
            .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect()
    }

    /// The fused pass and the tensor operations compute the same update (to rounding: the tensor
    /// path is a different sequence of roundings).
    #[test]
    fn fused_update_matches_tensor_ops() {
        let n = 1000;
        let make = |seed: u64, scale: f64| Tensor::from_slice(&noise(n, seed)) * scale;
        let (g, m0, v0, p0) = (
            make(1, 1.0),
            make(2, 0.1),
            make(3, 0.01).abs(),
            make(4, 1.0),
        );
        let run = |fused_path: bool| {
            let (mut p, mut m, mut v) = (p0.copy(), m0.copy(), v0.copy());
            let c = Coefficients {
                one_minus_beta1: 0.1,
                beta2: 0.999,
                one_minus_beta2: 0.001,
                inv_bias_correction2_sqrt: (1.0 / (1.0f64 - 0.999f64.powi(3)).sqrt()) as f32,
                eps: 1e-8,
                step_size: (1e-3 / (1.0 - 0.9f64.powi(3))) as f32,
            };
            if fused_path {
                assert!(fused::applies(&p, &g, &m, &v));
                let work = vec![fused::Slices::of(&mut p, &g, &mut m, &mut v).unwrap()];
                fused::update(work, 1, &c);
            } else {
                update_with_tensor_ops(&mut p, &g, &mut m, &mut v, &c).unwrap();
            }
            (p, m, v)
        };
        let (fp, fm, fv) = run(true);
        let (tp, tm, tv) = run(false);
        assert!(fm.allclose(&tm, 1e-6, 1e-7, false));
        assert!(fv.allclose(&tv, 1e-6, 1e-9, false));
        assert!(fp.allclose(&tp, 1e-6, 1e-6, false));
        // The update moved the parameters by about the step size, not by nothing.
        let moved = (&fp - &p0).abs().mean(Kind::Float).double_value(&[]);
        assert!(moved > 1e-4, "{moved}");
    }

    /// The vectorised and the plain loop give the same bits.
    #[test]
    fn every_cpu_path_gives_the_same_bits() {
        let n = 1037;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let c = Coefficients {
            one_minus_beta1: 0.1,
            beta2: 0.999,
            one_minus_beta2: 0.001,
            inv_bias_correction2_sqrt: 31.63,
            eps: 1e-8,
            step_size: 0.01,
        };
        let start = || (vec![0.5f32; n], vec![0.01f32; n], vec![0.002f32; n]);
        let (mut p1, mut m1, mut v1) = start();
        fused::update_slices(&mut p1, &g, &mut m1, &mut v1, &c);
        let (p2, m2, v2) = start();
        let (mut p2t, mut m2t, mut v2t) = (
            Tensor::from_slice(&p2),
            Tensor::from_slice(&m2),
            Tensor::from_slice(&v2),
        );
        let gt = Tensor::from_slice(&g);
        let work = vec![fused::Slices::of(&mut p2t, &gt, &mut m2t, &mut v2t).unwrap()];
        fused::update(work, 1, &c);
        assert_eq!(Vec::<f32>::try_from(&p2t).unwrap(), p1);
        assert_eq!(Vec::<f32>::try_from(&m2t).unwrap(), m1);
        assert_eq!(Vec::<f32>::try_from(&v2t).unwrap(), v1);
    }

    /// Split over threads (the OpenMP pool), across and inside tensors, the update gives the
    /// same bits as on one thread.
    #[test]
    fn threads_give_the_same_bits() {
        let sizes = [700_001usize, 3, 600_000, 129];
        let c = Coefficients {
            one_minus_beta1: 0.1,
            beta2: 0.999,
            one_minus_beta2: 0.001,
            inv_bias_correction2_sqrt: 3.0,
            eps: 1e-8,
            step_size: 0.01,
        };
        let run = |threads: usize| {
            let mut state: Vec<[Tensor; 4]> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let t = |stream: u64| Tensor::from_slice(&noise(n, 4 * i as u64 + stream));
                    [t(0), t(1), t(2), t(3).abs()]
                })
                .collect();
            let work = state
                .iter_mut()
                .map(|[p, g, m, v]| fused::Slices::of(p, g, m, v).unwrap())
                .collect();
            fused::update(work, threads, &c);
            state
        };
        let one = run(1);
        for threads in [2, 3] {
            for (a, b) in one.iter().zip(run(threads)) {
                for (x, y) in a.iter().zip(b.iter()) {
                    assert!(x.equal(y), "{threads} threads differ");
                }
            }
        }
    }
}
