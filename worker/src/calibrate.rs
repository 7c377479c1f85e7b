//! `worker --calibrate`: times trials' models for `coordinator plan --calibrate` without data
//! and without a coordinator. It reads one trial spec per line (JSON) on its standard input and
//! answers each with one [`Calibration`] line on its standard output (the protocol is
//! `sweep_common::calibration`'s).
//!
//! A measurement trains the trial's own model (its layers, batch size, optimiser, augmentation
//! and normalisation) on random images of its dataset's shape: one warm-up pass of
//! [`STEPS`] full batches (fewer for very large batches), then timed passes until [`MIN_TIMED`] has gone by (at most
//! [`MAX_PASSES`]), and the same for evaluation. What the images hold does not change the time
//! a step takes. Memory is measured only for the first trial of a process (a trial's memory
//! is reused by the next one, so later readings would say nothing): `coordinator plan` starts a
//! process per model.

use std::io::{BufRead, Write};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use sweep_common::calibration::{Calibration, Cost, Outcome};
use sweep_common::rng::SplitMix64;
use sweep_common::{SplitSpec, TrialSpec};
use sweep_data::ImageSet;
use tch::Device;

use crate::data_cache::DeviceData;
use crate::memory;
use crate::train::{TrainError, Trainer};

/// Full batches per pass (training and evaluation alike).
pub const STEPS: usize = 8;
/// Timed passes go on until this much time is measured...
pub const MIN_TIMED: Duration = Duration::from_millis(500);
/// ... or this many passes.
pub const MAX_PASSES: u32 = 5;
/// Most bytes of training images a measurement makes (as many again are evaluated): fewer than
/// [`STEPS`] batches for very large batches, never less than one.
const MAX_IMAGE_BYTES: usize = 128 << 20;
/// Longest request line read (a trial spec is well under 1 MiB).
const MAX_LINE: usize = 1 << 20;

/// Answers every request line of `input` on `output`, measuring on `device`. An unreadable
/// request line is answered on standard error and skipped; an I/O error ends the run.
pub fn run(device: Device, input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    let mut first = true;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            eprintln!("error: a calibration request over {MAX_LINE} bytes; skipped");
            continue;
        }
        let spec: TrialSpec = match serde_json::from_str(&line) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: not a trial spec ({e}); skipped");
                continue;
            }
        };
        let outcome = match measure(&spec, device, first) {
            Ok(cost) => Outcome::Measured(cost),
            Err(e) => Outcome::Failed {
                error: e.to_string(),
            },
        };
        first = false;
        let answer = Calibration {
            id: spec.id,
            outcome,
        };
        let text = serde_json::to_string(&answer).map_err(std::io::Error::other)?;
        writeln!(output, "{text}")?;
        output.flush()?;
    }
    Ok(())
}

/// The cost of `spec`'s model on `device`; its memory too when `with_memory`.
pub fn measure(spec: &TrialSpec, device: Device, with_memory: bool) -> Result<Cost, TrainError> {
    if spec.program.is_some() {
        return Err(TrainError::Invalid(
            "a program trial: its time is the program's own, which calibration cannot run".into(),
        ));
    }
    let batch = spec.params.batch_size as usize;
    if batch == 0 {
        return Err(TrainError::Invalid("batch_size 0".into()));
    }
    let bytes_per_batch = batch.saturating_mul(spec.dataset.input_len()).max(1);
    let steps = (MAX_IMAGE_BYTES / bytes_per_batch).clamp(1, STEPS);
    let images = steps * batch;
    // A GPU's context (hundreds of MiB) is made by its first tensor: before the baseline.
    let _context = tch::Tensor::f_zeros([1], (tch::Kind::Float, device))?;
    let before = with_memory.then(|| memory::read(device)).flatten();
    // Half for training, half for evaluation; every training image, every pass.
    let mut spec = spec.clone();
    spec.split = SplitSpec {
        train_ratio: 0.5,
        seed: 0,
    };
    spec.params.train_fraction = 1.0;
    let data = DeviceData::from_image_set(&random_images(&spec, 2 * images), device)
        .map_err(|e| TrainError::Invalid(format!("cannot make calibration images: {e}")))?;
    let mut trainer = Trainer::new(&spec, &data)?;
    let stop = AtomicBool::new(false);
    // Warm-up: libtorch's first calls allocate and pick kernels.
    fit(&mut trainer, &stop)?;
    trainer.test_confusion()?;
    let memory_bytes = before.and_then(|b| {
        let after = memory::read(device)?;
        Some(after.used.saturating_sub(b.used))
    });
    let train = timed(|| fit(&mut trainer, &stop))?;
    let eval = timed(|| trainer.test_confusion().map(drop))?;
    Ok(Cost {
        train_seconds_per_image: train / images as f64,
        eval_seconds_per_image: eval / images as f64,
        memory_bytes,
    })
}

/// One pass of training; a loss gone non-finite on random labels still timed the pass.
fn fit(trainer: &mut Trainer<'_>, stop: &AtomicBool) -> Result<(), TrainError> {
    match trainer.fit_epoch(stop) {
        Ok(_) | Err(TrainError::NonFiniteLoss { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Mean seconds of one call of `f`, over passes until [`MIN_TIMED`] or [`MAX_PASSES`].
fn timed(mut f: impl FnMut() -> Result<(), TrainError>) -> Result<f64, TrainError> {
    let started = Instant::now();
    let mut passes = 0;
    while passes < MAX_PASSES && (passes == 0 || started.elapsed() < MIN_TIMED) {
        f()?;
        passes += 1;
    }
    Ok(started.elapsed().as_secs_f64() / f64::from(passes))
}

/// `n` random images and labels of `spec`'s dataset.
fn random_images(spec: &TrialSpec, n: usize) -> ImageSet {
    let kind = spec.dataset;
    let mut rng = SplitMix64::for_stream(0, "calibration", 0);
    let mut set = ImageSet::new(kind);
    set.images = (0..n * kind.input_len())
        .map(|_| rng.below(256) as u8)
        .collect();
    set.labels = (0..n)
        .map(|_| rng.below(kind.num_classes() as u64) as u8)
        .collect();
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use sweep_common::grid::Grid;

    fn specs(grid: &str) -> Vec<TrialSpec> {
        let grid = Grid::parse(grid, "t.toml").expect("grid");
        grid.experiments
            .into_iter()
            .flat_map(|e| e.trials)
            .collect()
    }

    #[test]
    fn answers_each_line_and_bigger_models_cost_more() {
        let trials = specs(
            r#"
            [sweep]
            name = "t"
            [[experiment]]
            name = "e"
            dataset = "fashion-mnist"
            [experiment.fixed]
            batch_size = 32
            hidden_layers = 1
            [experiment.grid]
            hidden_width = [8, 1024]
            "#,
        );
        let mut input = String::new();
        for t in &trials {
            input.push_str(&serde_json::to_string(t).expect("json"));
            input.push('\n');
        }
        input.push_str("not json\n\n");
        let mut out = Vec::new();
        run(Device::Cpu, input.as_bytes(), &mut out).expect("run");
        let answers: Vec<Calibration> = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a calibration line"))
            .collect();
        assert_eq!(
            answers.len(),
            2,
            "one answer per trial, the bad line skipped"
        );
        let cost = |i: usize| match &answers[i].outcome {
            Outcome::Measured(c) => *c,
            Outcome::Failed { error } => panic!("{error}"),
        };
        assert_eq!(answers[0].id, trials[0].id);
        let (small, big) = (cost(0), cost(1));
        assert!(small.train_seconds_per_image > 0.0 && small.eval_seconds_per_image > 0.0);
        assert!(small.memory_bytes.is_some(), "the first trial's memory");
        assert_eq!(big.memory_bytes, None, "only the first trial's memory");
        // 784x8 against 784x1024 weights: 128 times the arithmetic. Not a timing bound, an
        // ordering two orders of magnitude wide.
        assert!(
            big.train_seconds_per_image > small.train_seconds_per_image,
            "{small:?} {big:?}"
        );
    }

    #[test]
    fn a_model_that_cannot_be_built_is_an_answer_not_a_crash() {
        let mut trial = specs(
            r#"
            [sweep]
            name = "t"
            [[experiment]]
            name = "e"
            dataset = "fashion-mnist"
            "#,
        )
        .remove(0);
        trial.params.batch_size = 0;
        let mut out = Vec::new();
        let line = serde_json::to_string(&trial).expect("json") + "\n";
        run(Device::Cpu, line.as_bytes(), &mut out).expect("run");
        let answer: Calibration =
            serde_json::from_str(String::from_utf8_lossy(&out).trim()).expect("an answer");
        assert!(
            matches!(answer.outcome, Outcome::Failed { .. }),
            "{answer:?}"
        );
    }
}
