//! `coordinator plan`: what a grid will cost before it runs. Per experiment: the trials, the
//! epochs, the parameters per model and the memory per trial (estimated from the shapes), and,
//! given epoch times recorded by an earlier sweep (`--from DIR`, its `results.json`), the
//! compute time and the wall time on a set of workers (`--workers cpu:2,gpu:4`).
//!
//! The model of time: an epoch's seconds are proportional to its work, `parameters x (3 x
//! training images + test images)` (a forward and a backward pass per training image, a forward
//! pass per test image), at one rate per worker (seconds per unit of work) measured over every
//! epoch the earlier sweep recorded. The wall time is the greedy schedule of the trials, in grid
//! order as the coordinator leases them, on the workers (each one trial at a time). Pure: no I/O, unit-tested.

use sweep_common::grid::{Grid, HyperParams};
use sweep_common::results::Results;
use sweep_common::trial::TrialSpec;

/// Bytes per `f32`.
const F32: u64 = 4;

/// Parameters of the model a trial trains: the MLP's weights and biases.
pub fn parameters(spec: &TrialSpec) -> u64 {
    let p: &HyperParams = &spec.params;
    let input = spec.dataset.input_len() as u64;
    let classes = spec.dataset.num_classes() as u64;
    let width = u64::from(p.hidden_width);
    let mut n = 0;
    let mut from = input;
    for _ in 0..p.hidden_layers {
        n += from * width + width;
        from = width;
    }
    n + from * classes + classes
}

/// Memory one trial needs on its device, estimated from the shapes: the weights, their
/// gradients and Adam's two moments (4 copies of the parameters), and the activations and
/// their gradients of one batch (the dataset, loaded once per worker and shared, aside).
pub fn memory_bytes(spec: &TrialSpec) -> u64 {
    let p = &spec.params;
    let widths = u64::from(p.hidden_width) * u64::from(p.hidden_layers);
    let per_sample = spec.dataset.input_len() as u64 + widths + spec.dataset.num_classes() as u64;
    4 * parameters(spec) * F32 + 2 * u64::from(p.batch_size) * per_sample * F32
}

/// The work of one epoch of a trial (see the module's doc).
pub fn epoch_work(spec: &TrialSpec) -> f64 {
    let official = spec.dataset.official_train_len();
    let (_, test) = spec.parts(official);
    let train = spec.train_subset_len(official);
    parameters(spec) as f64 * (3 * train + test) as f64
}

/// Seconds per unit of work measured in an earlier sweep's results, with the epochs measured;
/// `None` when it recorded no epoch.
pub fn rate(results: &Results<'_>) -> Option<(f64, usize)> {
    let mut seconds = 0.0;
    let mut work = 0.0;
    let mut epochs = 0;
    for t in &results.trials {
        let spec = TrialSpec {
            id: t.id,
            experiment: t.experiment.to_string(),
            name: t.name.to_string(),
            dataset: t.dataset,
            params: t.params.clone().into_owned(),
            split: t.split,
            checkpoint_every: 0,
            program: None,
        };
        let w = epoch_work(&spec);
        for e in t
            .epochs
            .iter()
            .filter(|e| e.seconds.is_finite() && e.seconds > 0.0)
        {
            seconds += e.seconds;
            work += w;
            epochs += 1;
        }
    }
    (epochs > 0 && work > 0.0).then(|| (seconds / work, epochs))
}

/// One experiment's estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentPlan {
    /// Its name.
    pub name: String,
    /// Its trials.
    pub trials: usize,
    /// Epochs over all its trials.
    pub epochs: u64,
    /// The smallest and largest model's parameters.
    pub parameters: (u64, u64),
    /// The largest trial's memory (see [`memory_bytes`]).
    pub memory_bytes: u64,
    /// Its compute time at the rate given, in seconds (one worker, one trial at a time).
    pub compute_seconds: Option<f64>,
}

/// The estimate of a whole grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per experiment, in file order.
    pub experiments: Vec<ExperimentPlan>,
    /// The wall time on the workers given, in seconds, when a rate is known.
    pub wall_seconds: Option<f64>,
}

/// The plan of `grid` on `workers` workers, at `rate` seconds per unit of work if known.
pub fn plan(grid: &Grid, rate: Option<f64>, workers: usize) -> Plan {
    let mut durations = Vec::new();
    let experiments = grid
        .experiments
        .iter()
        .map(|e| {
            let mut compute = 0.0;
            for t in &e.trials {
                let seconds = rate.map_or(0.0, |r| r * epoch_work(t) * f64::from(t.params.epochs));
                compute += seconds;
                durations.push(seconds);
            }
            let params = e.trials.iter().map(parameters);
            ExperimentPlan {
                name: e.name.clone(),
                trials: e.trials.len(),
                epochs: e.trials.iter().map(|t| u64::from(t.params.epochs)).sum(),
                parameters: (params.clone().min().unwrap_or(0), params.max().unwrap_or(0)),
                memory_bytes: e.trials.iter().map(memory_bytes).max().unwrap_or(0),
                compute_seconds: rate.map(|_| compute),
            }
        })
        .collect();
    Plan {
        experiments,
        wall_seconds: rate.map(|_| makespan(&durations, workers)),
    }
}

/// The wall time of `durations` on `workers` workers, each trial, in grid order (the order the
/// coordinator leases them in), on the first worker free.
pub fn makespan(durations: &[f64], workers: usize) -> f64 {
    let mut free = vec![0.0_f64; workers.max(1)];
    for &d in durations {
        if let Some(slot) = free.iter_mut().min_by(|a, b| a.total_cmp(b)) {
            *slot += d;
        }
    }
    free.into_iter().fold(0.0, f64::max)
}

/// `--workers cpu:2,gpu:4`: how many workers of each kind, in total.
pub fn parse_workers(s: &str) -> Result<(u32, u32), String> {
    let (mut cpu, mut gpu) = (0u32, 0u32);
    for part in s.split(',') {
        let (kind, n) = part.split_once(':').unwrap_or((part, "1"));
        let n: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{part:?}: the count after ':' must be a number above 0"))?;
        match kind.trim() {
            "cpu" => cpu += n,
            "gpu" => gpu += n,
            other => return Err(format!("{other:?} is not a worker kind: cpu:N or gpu:N")),
        }
    }
    Ok((cpu, gpu))
}

/// Seconds as people read them: `45 s`, `12 min`, `3 h 20 min`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.round().max(0.0) as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The plan as text.
pub fn text(plan: &Plan, workers: &str, rate: Option<(f64, usize)>, from: Option<&str>) -> String {
    let mut out = format!(
        "{:<24} {:>7} {:>8} {:>23} {:>12} {:>14}\n",
        "experiment", "trials", "epochs", "parameters per model", "memory/trial", "compute"
    );
    for e in &plan.experiments {
        let params = if e.parameters.0 == e.parameters.1 {
            e.parameters.0.to_string()
        } else {
            format!("{}-{}", e.parameters.0, e.parameters.1)
        };
        out.push_str(&format!(
            "{:<24} {:>7} {:>8} {:>23} {:>9.1} MiB {:>14}\n",
            sweep_common::text::terminal(&e.name),
            e.trials,
            e.epochs,
            params,
            e.memory_bytes as f64 / (1024.0 * 1024.0),
            e.compute_seconds.map_or_else(|| "-".to_owned(), duration)
        ));
    }
    match (plan.wall_seconds, rate, from) {
        (Some(wall), Some((r, epochs)), Some(from)) => out.push_str(&format!(
            "estimated wall time on {workers}: {} (from {epochs} epochs recorded in {}: {r:.3e} s \
             per parameter x image; every worker assumed as fast as that sweep's)\n",
            duration(wall),
            sweep_common::text::terminal(from),
        )),
        _ => out.push_str(
            "no time estimate: give --from DIR, the output folder of an earlier sweep on these \
             machines (its results.json's epoch times)\n",
        ),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB1: &str = include_str!("../../../lab1.toml");

    #[test]
    fn lab1s_models_and_memory_from_their_shapes() {
        let grid = Grid::parse(LAB1, "lab1.toml").expect("lab1.toml");
        let p = plan(&grid, None, 2);
        let p1 = &p.experiments[0];
        assert_eq!((p1.trials, p1.epochs), (9, 180));
        // CIFAR-10, width 1024: 3072*1024+1024 + k*(1024*1024+1024) + 1024*10+10.
        assert_eq!(p1.parameters, (3_157_002, 5_256_202));
        let p2 = &p.experiments[1];
        assert_eq!((p2.trials, p2.epochs), (5, 150));
        assert_eq!(p2.parameters, (203_530, 203_530));
        // Weights, gradients and Adam's moments of 5.26 M parameters: 84 MB, plus a batch.
        assert_eq!(
            p1.memory_bytes,
            4 * 5_256_202 * 4 + 2 * 128 * (3072 + 3072 + 10) * 4
        );
        assert_eq!(p.wall_seconds, None);
        assert!(text(&p, "cpu:2", None, None).contains("no time estimate"));
    }

    #[test]
    fn time_follows_the_work_and_the_workers() {
        let grid = Grid::parse(LAB1, "lab1.toml").expect("lab1.toml");
        let one = plan(&grid, Some(1e-9), 1);
        let four = plan(&grid, Some(1e-9), 4);
        let compute: f64 = one
            .experiments
            .iter()
            .filter_map(|e| e.compute_seconds)
            .sum();
        let wall_one = one.wall_seconds.unwrap_or_default();
        assert!(
            (wall_one - compute).abs() < 1e-6 * compute,
            "one worker: the sum"
        );
        let wall_four = four.wall_seconds.unwrap_or_default();
        assert!(
            wall_four >= compute / 4.0 && wall_four < compute / 2.0,
            "{wall_four}"
        );
    }

    #[test]
    fn trials_go_to_the_first_free_worker_in_grid_order() {
        // Greedy, as the coordinator leases: 3|3, 5|5, 7|5 (the best split would be 6).
        assert_eq!(makespan(&[3.0, 3.0, 2.0, 2.0, 2.0], 2), 7.0);
        assert_eq!(makespan(&[1.0, 1.0, 4.0], 2), 5.0);
        assert_eq!(makespan(&[5.0, 1.0, 1.0], 4), 5.0);
        assert_eq!(makespan(&[], 2), 0.0);
    }

    #[test]
    fn worker_sets() {
        assert_eq!(parse_workers("cpu:2,gpu:4"), Ok((2, 4)));
        assert_eq!(parse_workers("cpu"), Ok((1, 0)));
        assert!(
            parse_workers("tpu:1")
                .unwrap_err()
                .contains("not a worker kind")
        );
        assert!(parse_workers("cpu:0").is_err());
    }

    #[test]
    fn a_recorded_sweep_gives_the_rate() {
        let grid = Grid::parse(LAB1, "lab1.toml").expect("lab1.toml");
        let spec = &grid.experiments[1].trials[0];
        let work = epoch_work(spec);
        let json = format!(
            r#"{{"format":1,"sweep":"lab1","grid_file":"lab1.toml","finished":false,"experiments":[],
            "trials":[{{"id":"{}","experiment":"{}","name":"{}","dataset":"fashion-mnist",
            "params":{},"split":{},"status":"running","attempts":1,
            "epochs":[{{"epoch":1,"train_loss":1.0,"train_accuracy":50.0,"test_accuracy":50.0,"seconds":{}}}]}}]}}"#,
            spec.id,
            spec.experiment,
            spec.name,
            serde_json::to_string(&spec.params).unwrap_or_default(),
            serde_json::to_string(&spec.split).unwrap_or_default(),
            work * 2e-9
        );
        let results: Results<'static> = serde_json::from_str(&json).expect("results");
        let (r, epochs) = rate(&results).expect("a rate");
        assert_eq!(epochs, 1);
        assert!((r - 2e-9).abs() < 1e-15, "{r}");
    }
}
