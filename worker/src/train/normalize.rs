//! Per-channel input normalisation (`normalize = "dataset"`): the mean and standard deviation of
//! each channel over the trial's training split (pixels in [0, 1], or as given when float32), computed once on the device
//! when the trial starts (so a resumed trial computes the same), then applied to every batch,
//! for training and evaluation alike, as torchvision's `Normalize(mean, std)` would.

use tch::{Kind, Tensor};

use super::TrainError;

/// Rows read at a time while summing (bounds the memory of the computation).
const CHUNK: i64 = 4096;

/// One value per input feature (the channel's value repeated over its pixels), on the device.
pub(super) struct Norm {
    mean: Tensor,
    inv_std: Tensor,
}

impl Norm {
    /// The statistics of the rows `idx` of `images` (u8 or f32 as stored, one flattened
    /// channel-major image a row, `channels` channels), of the model's input values
    /// ([`super::pixel_scale`]).
    pub(super) fn of(images: &Tensor, idx: &Tensor, channels: i64) -> Result<Self, TrainError> {
        tch::no_grad(|| {
            let n = idx.size1()?;
            let features = images.size2()?.1;
            let pixels = features / channels;
            let device = images.device();
            let scale = super::pixel_scale(images);
            let mut sum = Tensor::f_zeros([channels], (Kind::Double, device))?;
            let mut squares = Tensor::f_zeros([channels], (Kind::Double, device))?;
            let mut start = 0;
            while start < n {
                let len = CHUNK.min(n - start);
                let rows = idx.f_narrow(0, start, len)?;
                let mut x = images.f_index_select(0, &rows)?.f_to_kind(Kind::Double)?;
                if let Some(scale) = scale {
                    x = x.f_mul_scalar(scale)?;
                }
                let x = x.f_view([len, channels, pixels])?;
                let dims: &[i64] = &[0, 2];
                let _ = sum.f_add_(&x.f_sum_dim_intlist(dims, false, Kind::Double)?)?;
                let sq = x.f_square()?.f_sum_dim_intlist(dims, false, Kind::Double)?;
                let _ = squares.f_add_(&sq)?;
                start += len;
            }
            let count = (n * pixels).max(1) as f64;
            let mean = sum.f_div_scalar(count)?;
            let var = squares.f_div_scalar(count)?.f_sub(&mean.f_square()?)?;
            // A constant channel has no spread: leave its scale alone rather than divide by 0.
            let std = var.f_clamp_min(0.0)?.f_sqrt()?.f_clamp_min(1e-6)?;
            let per_feature = |t: Tensor| -> Result<Tensor, TrainError> {
                Ok(t.f_repeat_interleave_self_int(pixels, 0, None)?
                    .f_to_kind(Kind::Float)?)
            };
            Ok(Self {
                mean: per_feature(mean)?,
                inv_std: per_feature(std.f_reciprocal()?)?,
            })
        })
    }

    /// Normalises `x` (float, rows of features in [0, 1]) in place.
    pub(super) fn apply_(&self, x: &mut Tensor) -> Result<(), TrainError> {
        let _ = x.f_sub_(&self.mean)?;
        let _ = x.f_mul_(&self.inv_std)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn statistics_are_per_channel_over_the_chosen_rows() {
        // 3 images, 2 channels of 2 pixels; row 2 is not in the split.
        let images = Tensor::from_slice(&[
            0u8, 255, 51, 51, //
            255, 0, 102, 102, //
            9, 9, 9, 9,
        ])
        .view([3, 4]);
        let idx = Tensor::from_slice(&[0i64, 1]).to_device(Device::Cpu);
        let norm = Norm::of(&images, &idx, 2).expect("stats");
        let mean = Vec::<f32>::try_from(&norm.mean).expect("mean");
        let expect = [0.5, 0.5, 0.3, 0.3];
        for (m, e) in mean.iter().zip(expect) {
            assert!((m - e).abs() < 1e-6, "{mean:?}");
        }
        let inv = Vec::<f32>::try_from(&norm.inv_std).expect("std");
        // Channel 0: values 0, 1, 1, 0: std 0.5. Channel 1: 0.2, 0.2, 0.4, 0.4: std 0.1.
        for (s, e) in inv.iter().zip([2.0f32, 2.0, 10.0, 10.0]) {
            assert!((s - e).abs() < 1e-3, "{inv:?}");
        }
        let mut x = images.f_to_kind(Kind::Float).expect("f") / 255.0;
        norm.apply_(&mut x).expect("apply");
        let rows = x.narrow(0, 0, 2).view([2, 2, 2]);
        let m = rows.mean_dim(&[0i64, 2][..], false, Kind::Float);
        let m = Vec::<f32>::try_from(&m).expect("m");
        assert!(m.iter().all(|v| v.abs() < 1e-5), "{m:?}");
    }
}
