//! Times the worker's trainer on one model, the way `bench/run` compares it with PyTorch:
//! seconds per epoch (training only, and with the per-epoch evaluation), samples per second and
//! achieved GFLOP/s, after one warm-up epoch.
//!
//!     cargo run --release -p sweep-worker --example train_bench -- \
//!         --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist \
//!         --hidden-layers 1 --width 256 --batch 64 --epochs 3 --threads 2
//!
//! With `--synthetic N` it trains on N random images of the dataset's shape instead of files
//! (for the CIFAR-10 shapes when the real CIFAR-10 is not at hand). With `--model SPEC` (a
//! grid's `model`, e.g. `"conv(16,3,p=1) bn relu maxpool(2) flatten linear(10)"`) it times that
//! model instead of the MLP (GFLOP/s are then not computed), with `--lr`, `--optimizer` and
//! `--train-fraction` as a grid sets them: a loop to profile the CNN path without a coordinator.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, bail};
use sweep_common::model::Model;
use sweep_common::rng::SplitMix64;
use sweep_common::{Activation, DatasetKind, HyperParams, SplitSpec, TrialId, TrialSpec};
use sweep_data::ImageSet;
use sweep_worker::data_cache::DeviceData;
use sweep_worker::train::Trainer;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> anyhow::Result<T> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("bad value for {name}")),
        None => Ok(default),
    }
}

/// Exact FLOPs of one training step over `batch` images: forward (2*in*out per layer) and weight
/// gradients (2*in*out) for every layer, input gradients (2*in*out) for all but the first.
fn step_flops(dims: &[i64], batch: i64) -> f64 {
    dims.windows(2)
        .enumerate()
        .map(|(i, d)| {
            let mm = 2.0 * (d[0] * d[1] * batch) as f64;
            if i == 0 { 2.0 * mm } else { 3.0 * mm }
        })
        .sum()
}

/// The dataset to train on: `synthetic` random images of its shape, or the files in `data_dir`.
fn bench_data(
    dataset: DatasetKind,
    synthetic: usize,
    data_dir: &str,
) -> anyhow::Result<DeviceData> {
    Ok(if synthetic > 0 {
        let mut rng = SplitMix64::new(1);
        let len = dataset.input_len();
        let mut set = ImageSet::new(dataset);
        set.images = (0..synthetic * len).map(|_| rng.below(256) as u8).collect();
        set.labels = (0..synthetic).map(|_| rng.below(10) as u8).collect();
        DeviceData::from_image_set(&set, tch::Device::Cpu)?
    } else {
        DeviceData::load(dataset, std::path::Path::new(data_dir), tch::Device::Cpu)?
    })
}

/// The trial: a grid's defaults (learning rate 0.001, the whole train split, seed 0), then
/// the flags.
fn bench_spec(
    dataset: DatasetKind,
    (activation, layers, width): (Activation, u32, u32),
    batch: u32,
    epochs: u32,
    args: &[String],
) -> anyhow::Result<TrialSpec> {
    let mut params = HyperParams::defaults(0)?;
    let model: String = arg(args, "--model", "mlp".to_owned())?;
    params.model = Model::parse(&model).map_err(|e| anyhow::anyhow!("--model: {e}"))?;
    params.learning_rate = arg(args, "--lr", params.learning_rate)?;
    params.train_fraction = arg(args, "--train-fraction", params.train_fraction)?;
    let optimizer: String = arg(args, "--optimizer", params.optimizer.name().to_owned())?;
    params.optimizer = optimizer
        .parse()
        .map_err(|e| anyhow::anyhow!("--optimizer: {e}"))?;
    params.activation = activation;
    params.hidden_layers = layers;
    params.hidden_width = width;
    params.batch_size = batch;
    params.epochs = epochs;
    let split = SplitSpec {
        train_ratio: 0.7,
        seed: 0,
    };
    Ok(TrialSpec {
        id: TrialId::from_content(&TrialSpec::canonical("bench", dataset, &params, &split)),
        experiment: "bench".into(),
        name: "bench".into(),
        dataset,
        params,
        split,
        checkpoint_every: 0,
        program: None,
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dataset: DatasetKind = arg(&args, "--dataset", "fashion-mnist".to_owned())?
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let data_dir: String = arg(
        &args,
        "--data-dir",
        "/usr/share/datasets/fashion-mnist".to_owned(),
    )?;
    let synthetic: usize = arg(&args, "--synthetic", 0)?;
    let layers: u32 = arg(&args, "--hidden-layers", 1)?;
    let width: u32 = arg(&args, "--width", 256)?;
    let batch: u32 = arg(&args, "--batch", 64)?;
    let epochs: u32 = arg(&args, "--epochs", 3)?;
    let threads: i32 = arg(&args, "--threads", 0)?;
    let activation: Activation = arg(&args, "--activation", "relu".to_owned())?
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if epochs < 2 {
        bail!("--epochs must be at least 2 (one warm-up epoch is not timed)");
    }
    if args.iter().any(|a| a == "--no-malloc-tuning") {
        eprintln!("malloc tuning off");
    } else {
        sweep_worker::device::tune_malloc();
    }
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    let data = bench_data(dataset, synthetic, &data_dir)?;
    let spec = bench_spec(dataset, (activation, layers, width), batch, epochs, &args)?;
    let mlp = spec.params.model == Model::MLP;
    let mut trainer = Trainer::new(&spec, &data)?;
    let stop = AtomicBool::new(false);
    let n = spec.train_subset_len(data.len());
    let mut dims = vec![dataset.input_len() as i64];
    dims.extend(std::iter::repeat_n(i64::from(width), layers as usize));
    dims.push(10);
    let full_batches = (n / batch as usize) as f64;
    let last = (n % batch as usize) as i64;
    let flops = full_batches * step_flops(&dims, i64::from(batch))
        + if last > 0 {
            step_flops(&dims, last)
        } else {
            0.0
        };
    trainer.run_epoch(&stop)?; // warm-up
    let mut train_times = Vec::new();
    let mut epoch_times = Vec::new();
    for _ in 1..epochs {
        let started = Instant::now();
        trainer.fit_epoch(&stop)?;
        let trained = started.elapsed().as_secs_f64();
        trainer.test_confusion()?;
        train_times.push(trained);
        epoch_times.push(started.elapsed().as_secs_f64());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let train = mean(&train_times);
    println!(
        "{{\"impl\":\"sweep\",\"dataset\":\"{dataset}\",\"dims\":{dims:?},\"batch\":{batch},\"threads\":{},\"train_images\":{n},\"epoch_s\":{:.4},\"train_s\":{train:.4},\"samples_per_s\":{:.0},\"gflops\":{:.1}}}",
        tch::get_num_threads(),
        mean(&epoch_times),
        n as f64 / train,
        if mlp { flops / train / 1e9 } else { 0.0 }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn spec(list: &[&str]) -> anyhow::Result<TrialSpec> {
        let mlp = (Activation::Relu, 1, 256);
        bench_spec(DatasetKind::FashionMnist, mlp, 64, 3, &args(list))
    }

    /// `bench/run` calls the trainer with its defaults: they must parse back (the default
    /// optimizer once was its display name, `Adam`, which `--optimizer` does not take).
    #[test]
    fn the_defaults_and_every_flag_make_a_trial() {
        let defaults = spec(&[]).expect("the defaults");
        assert_eq!(defaults.params.model, Model::MLP);
        let flagged = spec(&[
            "--model",
            "conv(8,3) relu flatten linear(10)",
            "--lr",
            "0.003",
            "--optimizer",
            "sgd",
            "--train-fraction",
            "0.1",
        ])
        .expect("every flag");
        assert_eq!(flagged.params.optimizer.name(), "sgd");
        assert_eq!(flagged.params.learning_rate, 0.003);
        assert_eq!(flagged.params.train_fraction, 0.1);
    }

    #[test]
    fn a_bad_flag_is_refused_by_name() {
        let e = spec(&["--optimizer", "adagrad"]).unwrap_err();
        assert!(e.to_string().starts_with("--optimizer"), "{e}");
        let e = spec(&["--lr", "fast"]).unwrap_err();
        assert!(e.to_string().contains("--lr"), "{e}");
    }
}
