//! Data augmentation of image batches on the training device: a random crop of the image's size
//! from the image padded with zeros on every side (torchvision's `RandomCrop(size, padding)`)
//! and a random horizontal flip (`RandomHorizontalFlip(p)`), in one gather over the batch as
//! stored (u8, flattened), before it is converted to float. Both paths (the MLP's hand-written
//! step and autograd) apply it the same way.
//!
//! The draws are an integer hash of (batch seed, position) computed on the device (as dropout's
//! masks are), the batch seed a function of the trial's seed, the epoch and the batch: no host
//! round trip, no global generator, the same numbers on any device and after a resume.

use sweep_common::HyperParams;
use sweep_common::rng::SplitMix64;
use tch::{Device, Kind, Tensor};

use super::TrainError;

/// What a trial's augmentation does to each training image.
#[derive(Debug, Clone, Copy)]
pub struct Augment {
    /// Channels, height, width.
    shape: [i64; 3],
    /// Zeros added on each side before the crop (0: no crop).
    padding: i64,
    /// Probability of a horizontal flip.
    flip: f64,
    /// The trial's seed.
    seed: u64,
}

impl Augment {
    /// The augmentation `p` asks for on images of `shape`, or `None` when it asks for none.
    pub fn new(p: &HyperParams, shape: [usize; 3]) -> Option<Self> {
        (p.random_crop > 0 || p.random_flip > 0.0).then(|| Self {
            shape: shape.map(|d| d as i64),
            padding: i64::from(p.random_crop),
            flip: p.random_flip,
            seed: p.seed,
        })
    }

    /// The seed of batch `batch` of epoch `epoch`.
    pub fn batch_seed(&self, epoch: u32, batch: u64) -> u64 {
        let stream = (u64::from(epoch) << 32) | (batch & 0xffff_ffff);
        SplitMix64::for_stream(self.seed, "augment", stream).next_u64()
    }

    /// The batch `raw` (`[rows, c h w]`, as the dataset stores images) augmented with the
    /// draws of `seed`: a new tensor of the same shape and kind.
    pub fn apply(&self, raw: &Tensor, seed: u64) -> Result<Tensor, TrainError> {
        let [c, h, w] = self.shape;
        let rows = raw.size().first().copied().unwrap_or(0);
        let device = raw.device();
        let pad = self.padding;
        let (hp, wp) = (h + 2 * pad, w + 2 * pad);
        let x = raw.f_reshape([rows, c, h, w])?;
        let x = if pad > 0 {
            x.f_constant_pad_nd([pad, pad, pad, pad])?
        } else {
            x
        };
        // Three draws per image: the crop's top and left, and the flip.
        let h32 = hash32(3 * rows, seed, device)?.f_reshape([rows, 3])?;
        let top = h32.f_select(1, 0)?.f_remainder(2 * pad + 1)?;
        let left = h32.f_select(1, 1)?.f_remainder(2 * pad + 1)?;
        let threshold = (self.flip * 4_294_967_296.0).ceil() as i64;
        let flipped = h32.f_select(1, 2)?.f_lt(threshold)?.f_unsqueeze(1)?;
        let long = (Kind::Int64, device);
        // Source row and column of each output pixel, per image.
        let ys = top.f_unsqueeze(1)?.f_add(&Tensor::f_arange(h, long)?)?;
        let cols = Tensor::f_arange(w, long)?;
        let mirrored = Tensor::f_arange(w, long)?.f_flip([0])?;
        let xs = left.f_unsqueeze(1)?.f_add(
            &cols
                .f_unsqueeze(0)?
                .f_where_self(&flipped.f_logical_not()?, &mirrored)?,
        )?;
        // Linear index into each padded image: channel, row, column.
        let channel = Tensor::f_arange(c, long)?.f_mul_scalar(hp * wp)?;
        let index = channel
            .f_view([1, c, 1, 1])?
            .f_add(&ys.f_mul_scalar(wp)?.f_view([rows, 1, h, 1])?)?
            .f_add(&xs.f_view([rows, 1, 1, w])?)?
            .f_reshape([rows, c * h * w])?;
        Ok(x.f_reshape([rows, c * hp * wp])?
            .f_gather(1, &index, false)?)
    }
}

/// `n` 32-bit hashes of (`seed`, position), as integers in `[0, 2^32)`, computed on `device`
/// with integer operations every device computes alike.
pub(super) fn hash32(n: i64, seed: u64, device: Device) -> Result<Tensor, TrainError> {
    const M: i64 = 0xffff_ffff;
    const MUL: i64 = 0x045d_9f3b;
    let (low, high) = ((seed & 0xffff_ffff) as i64, (seed >> 32) as i64);
    let mut h = Tensor::f_arange(n, (Kind::Int64, device))?
        .f_add_scalar(low)?
        .f_bitwise_and(M)?
        .f_bitwise_xor(high)?;
    for _ in 0..2 {
        let shifted = h.f_bitwise_right_shift_tensor_scalar(16)?;
        h = h
            .f_bitwise_xor_tensor(&shifted)?
            .f_mul_scalar(MUL)?
            .f_bitwise_and(M)?;
    }
    let shifted = h.f_bitwise_right_shift_tensor_scalar(16)?;
    Ok(h.f_bitwise_xor_tensor(&shifted)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn augment(padding: u32, flip: f64) -> Augment {
        let mut p = HyperParams::defaults(5).unwrap();
        p.random_crop = padding;
        p.random_flip = flip;
        Augment::new(&p, [2, 3, 4]).unwrap()
    }

    /// Two images of 2 x 3 x 4 with distinct values (1..=48).
    fn batch() -> Tensor {
        Tensor::arange_start(1, 49, (Kind::Uint8, Device::Cpu)).reshape([2, 24])
    }

    fn image(t: &Tensor, i: i64) -> Vec<Vec<Vec<u8>>> {
        let v = Vec::<u8>::try_from(t.get(i)).unwrap();
        v.chunks(12)
            .map(|ch| ch.chunks(4).map(<[u8]>::to_vec).collect())
            .collect()
    }

    /// Every augmented image is a window of the zero-padded image, mirrored or not, and
    /// the draws vary across images and seeds but not between two calls with one seed.
    #[test]
    fn crops_are_windows_of_the_padded_image() {
        let a = augment(1, 0.5);
        let x = batch();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..40u64 {
            let out = a.apply(&x, seed).unwrap();
            assert_eq!(out.size(), [2, 24]);
            assert_eq!(out.kind(), Kind::Uint8);
            assert!(out.equal(&a.apply(&x, seed).unwrap()));
            for i in 0..2 {
                let src = image(&x, i);
                let got = image(&out, i);
                let mut found = None;
                for top in 0..3usize {
                    for left in 0..3usize {
                        for flip in [false, true] {
                            let want: Vec<Vec<Vec<u8>>> = (0..2)
                                .map(|c| {
                                    (0..3)
                                        .map(|y| {
                                            (0..4)
                                                .map(|x| {
                                                    let x = if flip { 3 - x } else { x };
                                                    let (sy, sx) = (y + top, x + left);
                                                    if (1..=3).contains(&sy)
                                                        && (1..=4).contains(&sx)
                                                    {
                                                        src[c][sy - 1][sx - 1]
                                                    } else {
                                                        0
                                                    }
                                                })
                                                .collect()
                                        })
                                        .collect()
                                })
                                .collect();
                            if want == got {
                                found = Some((top, left, flip));
                            }
                        }
                    }
                }
                let found = found.unwrap_or_else(|| panic!("seed {seed}: {got:?}"));
                seen.insert(found);
            }
        }
        // 18 possible draws; 80 images see most of them.
        assert!(seen.len() >= 12, "{seen:?}");
    }

    /// A flip with probability 1 and no padding mirrors every image; probability 0 and no
    /// padding is no augmentation at all.
    #[test]
    fn flips_mirror_the_width() {
        let x = batch();
        let out = augment(0, 1.0).apply(&x, 3).unwrap();
        let want = x.reshape([2, 2, 3, 4]).flip([3]).reshape([2, 24]);
        assert!(out.equal(&want));
        let mut p = HyperParams::defaults(5).unwrap();
        p.random_flip = 0.0;
        assert!(Augment::new(&p, [2, 3, 4]).is_none());
    }
}
