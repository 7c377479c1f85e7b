//! `coordinator plan`: what a grid will cost before it runs. Per experiment: the trials, the
//! epochs, the parameters per model and the memory per trial (estimated from the shapes), and,
//! given the speed of the workers, the compute time and the wall time on a set of workers
//! (`--workers cpu:2,gpu:4`).
//!
//! Two sources of speed ([`Speed`]):
//! - **Measured** (`--calibrate`): `worker --calibrate` timed a few training steps and an
//!   evaluation of each distinct model ([`cost_key`]) on this machine, per kind of worker; an
//!   epoch's seconds are its training images times the seconds of one training image plus its
//!   evaluated images times the seconds of one evaluated image.
//! - **Recorded** (`--from DIR`): an epoch's seconds are proportional to its work, `parameters
//!   x (3 x training images + test images)` (a forward and a backward pass per training image,
//!   a forward pass per test image), at one rate (seconds per unit of work) measured over every
//!   epoch an earlier sweep recorded, the same for every worker.
//!
//! The wall time is the greedy schedule of the trials, in grid order as the coordinator leases
//! them, each on the first worker free (each worker one trial at a time). Pure: no I/O,
//! unit-tested; `local::calibrate` runs the workers.

use std::collections::HashMap;

use sweep_common::architecture::Architecture;
use sweep_common::calibration::Cost;
use sweep_common::grid::Experiment;
use sweep_common::grid::{Grid, Param};
use sweep_common::model::{ModelSpec, Shape};
use sweep_common::results::Results;
use sweep_common::rng::SplitMix64;
use sweep_common::search::replay::{self, Recorded};
use sweep_common::search::{Mode, Rule, StoppingSpec, stopping};
use sweep_common::trial::TrialSpec;

/// Bytes per `f32`.
const F32: u64 = 4;

/// Parameters of the model a trial trains (0 for a program trial, whose model the plan cannot
/// see, and for a model that does not fit its dataset).
pub fn parameters(spec: &TrialSpec) -> u64 {
    if spec.program.is_some() {
        return 0;
    }
    Architecture::of(&spec.params, spec.dataset)
        .parameters
        .unwrap_or(0)
}

/// Values per sample between the layers of a trial's model: its input, every hidden layer's
/// output and its logits (every layer's output for a model of layers).
fn activations_per_sample(spec: &TrialSpec) -> u64 {
    let p = &spec.params;
    let input = spec.dataset.input_len() as u64;
    match p.model.spec() {
        Ok(ModelSpec::Layers(layers)) => {
            let inferred = ModelSpec::Layers(layers).infer(spec.dataset);
            input
                + inferred.map_or(0, |i| {
                    i.shapes
                        .iter()
                        .map(|s| match *s {
                            Shape::Image { c, h, w } => c * h * w,
                            Shape::Flat(n) => n,
                        })
                        .sum()
                })
        }
        Ok(ModelSpec::Mlp) | Err(_) => {
            let widths = u64::from(p.hidden_width) * u64::from(p.hidden_layers);
            input + widths + spec.dataset.num_classes() as u64
        }
    }
}

/// Memory one trial needs on its device, estimated from the shapes: the weights, their
/// gradients and the optimiser's two moments (4 copies of the parameters), and the activations
/// and their gradients of one batch (the dataset, loaded once per worker and shared, aside).
pub fn memory_bytes(spec: &TrialSpec) -> u64 {
    let batch = u64::from(spec.params.batch_size);
    4 * parameters(spec) * F32 + 2 * batch * activations_per_sample(spec) * F32
}

/// The training images and the evaluated images of one epoch of a trial.
pub fn epoch_images(spec: &TrialSpec) -> (usize, usize) {
    let official = spec.dataset.official_train_len();
    let (_, test) = spec.parts(official);
    (spec.train_subset_len(official), test)
}

/// The work of one epoch of a trial (see the module's doc).
pub fn epoch_work(spec: &TrialSpec) -> f64 {
    let (train, test) = epoch_images(spec);
    parameters(spec) as f64 * (3 * train + test) as f64
}

/// Hyperparameters that change the numbers a step computes with, not how many: one model
/// calibrated stands for every value of these.
const COST_NEUTRAL: [Param; 11] = [
    Param::Seed,
    Param::Epochs,
    Param::LearningRate,
    Param::TrainFraction,
    Param::Momentum,
    Param::WeightDecay,
    Param::LrSchedule,
    Param::LrScheduleUnit,
    Param::LrWarmup,
    Param::LrStepSize,
    Param::LrGamma,
];

/// What a step of a trial costs depends on: its dataset and every hyperparameter but the
/// [`COST_NEUTRAL`] ones. Trials with the same key are calibrated once.
pub fn cost_key(spec: &TrialSpec) -> String {
    let mut key = spec.dataset.to_string();
    for param in Param::ALL {
        if !COST_NEUTRAL.contains(&param) {
            key.push_str(&format!(
                " {}={}",
                param.key(),
                spec.params.get(param).canonical()
            ));
        }
    }
    key
}

/// A kind of worker in `--workers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A CPU worker.
    Cpu,
    /// A GPU worker.
    Gpu,
}

impl Kind {
    /// How `--workers` and the plan's text name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cpu => "cpu",
            Kind::Gpu => "gpu",
        }
    }
}

/// How fast the workers are.
#[derive(Debug, Clone, PartialEq)]
pub enum Speed {
    /// Not known: the plan gives no times.
    Unknown,
    /// Seconds per unit of work, every worker alike, from an earlier sweep's epochs.
    Recorded(f64),
    /// Measured per kind of worker and [`cost_key`].
    Calibrated(HashMap<(Kind, String), Cost>),
}

impl Speed {
    /// Seconds of one epoch of `spec` on a worker of `kind`, when known.
    pub fn epoch_seconds(&self, spec: &TrialSpec, kind: Kind) -> Option<f64> {
        match self {
            Speed::Unknown => None,
            Speed::Recorded(rate) => Some(rate * epoch_work(spec)),
            Speed::Calibrated(costs) => {
                let cost = costs.get(&(kind, cost_key(spec)))?;
                let (train, test) = epoch_images(spec);
                Some(cost.epoch_seconds(train, test))
            }
        }
    }

    /// The memory a calibration measured for `spec` on `kind`, when it did.
    pub fn measured_memory(&self, spec: &TrialSpec, kind: Kind) -> Option<u64> {
        match self {
            Speed::Calibrated(costs) => costs.get(&(kind, cost_key(spec)))?.memory_bytes,
            Speed::Unknown | Speed::Recorded(_) => None,
        }
    }
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
    /// With early stopping, what the rule is expected to train.
    pub stopping: Option<StoppingPlan>,
    /// The largest memory a calibration measured for one of its trials, per kind of worker.
    pub measured_memory: Vec<(Kind, u64)>,
    /// Its compute time per kind of worker (one worker, one trial at a time), in seconds, for
    /// the kinds whose speed is known for every one of its trials.
    pub compute_seconds: Vec<(Kind, f64)>,
}

/// The estimate of a whole grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per experiment, in file order.
    pub experiments: Vec<ExperimentPlan>,
    /// The wall time on the workers given, in seconds, when every trial's time is known.
    pub wall_seconds: Option<f64>,
}

/// What an experiment's early-stopping rule is expected to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoppingPlan {
    /// The rule.
    pub rule: Rule,
    /// The epochs expected over all the experiment's trials.
    pub epochs: f64,
    /// Whether they come from simulations ([`expected_share`]) or, for an experiment too large
    /// to simulate, from the nominal rung shares ([`stopping::expected_epochs`]).
    pub simulated: bool,
}

/// The share of its epochs an experiment is expected to train under its rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    /// Epochs trained over epochs of the full experiment, in (0, 1].
    pub share: f64,
    /// See [`StoppingPlan::simulated`].
    pub simulated: bool,
}

/// Simulations of a rule averaged by [`expected_share`].
pub const SIMULATIONS: u64 = 8;
/// Largest experiment simulated, in trials x epochs (the rule decides after every epoch).
pub const MAX_SIMULATED_EPOCHS: u64 = 100_000;

/// The share of `e`'s epochs its rule `spec` is expected to train on `workers` workers, each
/// epoch of a trial taking `seconds(trial)`: the mean over [`SIMULATIONS`] replays
/// (`search::replay`, the coordinator's own decisions in virtual time) of curves that rank the
/// configurations at random (each configuration's metric rising linearly to a final value drawn
/// at random, its seeds alike). A rule's effect depends on how the real curves cross, which no
/// plan knows; what the simulation keeps is the rule's structure and its asynchrony (a trial
/// judged against the trials that reached its rung before it). An experiment over
/// [`MAX_SIMULATED_EPOCHS`] takes the nominal rung shares instead.
pub fn expected_share(
    e: &Experiment,
    spec: &StoppingSpec,
    workers: usize,
    seconds: impl Fn(&TrialSpec) -> f64,
) -> Expected {
    let full: u64 = e.trials.iter().map(|t| u64::from(t.params.epochs)).sum();
    if full == 0 {
        return Expected {
            share: 1.0,
            simulated: false,
        };
    }
    if full > MAX_SIMULATED_EPOCHS {
        let nominal: f64 = e
            .trials
            .iter()
            .map(|t| {
                stopping::expected_epochs(&spec.rule, t.params.epochs)
                    .unwrap_or(f64::from(t.params.epochs))
            })
            .sum();
        return Expected {
            share: nominal / full as f64,
            simulated: false,
        };
    }
    let configs: Vec<String> = e.trials.iter().map(TrialSpec::configuration).collect();
    let mut order: HashMap<&str, u64> = HashMap::new();
    for c in &configs {
        let next = order.len() as u64;
        order.entry(c.as_str()).or_insert(next);
    }
    let mut trained = 0;
    for sim in 0..SIMULATIONS {
        let mut rng = SplitMix64::for_stream(sim, "plan-stopping", 0);
        let finals: Vec<f64> = (0..order.len())
            .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
            .collect();
        let recorded: Vec<Recorded<usize>> = e
            .trials
            .iter()
            .zip(&configs)
            .enumerate()
            .map(|(i, (t, c))| {
                let position = order.get(c.as_str()).copied().unwrap_or(0);
                let last = finals.get(position as usize).copied().unwrap_or(0.0);
                let epochs = t.params.epochs;
                let value = |k: u32| match spec.objective.mode {
                    Mode::Max => last * f64::from(k) / f64::from(epochs),
                    Mode::Min => 1.0 - last * f64::from(k) / f64::from(epochs),
                };
                Recorded {
                    trial: i,
                    config: position as usize,
                    order: position,
                    values: (1..=epochs).map(value).collect(),
                    seconds: vec![seconds(t); epochs as usize],
                }
            })
            .collect();
        trained += replay::replay(spec, &recorded, workers.max(1)).epochs_trained;
    }
    Expected {
        share: trained as f64 / (SIMULATIONS * full) as f64,
        simulated: true,
    }
}

/// The kinds of `workers`, in order, once each.
fn kinds(workers: &[Kind]) -> Vec<Kind> {
    let mut kinds = Vec::new();
    for &k in workers {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
}

/// The plan of `grid` on `workers` at `speed`.
pub fn plan(grid: &Grid, speed: &Speed, workers: &[Kind]) -> Plan {
    let kinds = kinds(workers);
    // Per trial, in grid order: its seconds on each kind.
    let mut durations: Vec<Vec<Option<f64>>> = Vec::new();
    let experiments = grid
        .experiments
        .iter()
        .map(|e| {
            // With early stopping, each trial's epochs scaled by the share the rule is
            // expected to train.
            let first_kind = kinds.first().copied().unwrap_or(Kind::Cpu);
            let expected = e.stopping.map(|spec| {
                let seconds = |t: &TrialSpec| speed.epoch_seconds(t, first_kind).unwrap_or(1.0);
                expected_share(e, &spec, workers.len(), seconds)
            });
            let share = expected.map_or(1.0, |x| x.share);
            let epochs = |t: &TrialSpec| f64::from(t.params.epochs) * share;
            let trial_seconds =
                |t: &TrialSpec, k: Kind| speed.epoch_seconds(t, k).map(|s| s * epochs(t));
            for t in &e.trials {
                durations.push(kinds.iter().map(|&k| trial_seconds(t, k)).collect());
            }
            let compute_seconds = kinds
                .iter()
                .filter_map(|&k| {
                    let all: Option<f64> = e.trials.iter().map(|t| trial_seconds(t, k)).sum();
                    all.map(|s| (k, s))
                })
                .collect();
            let measured_memory = kinds
                .iter()
                .filter_map(|&k| {
                    let most = e
                        .trials
                        .iter()
                        .filter_map(|t| speed.measured_memory(t, k))
                        .max();
                    most.map(|m| (k, m))
                })
                .collect();
            let params = e.trials.iter().map(parameters);
            ExperimentPlan {
                name: e.name.clone(),
                trials: e.trials.len(),
                epochs: e.trials.iter().map(|t| u64::from(t.params.epochs)).sum(),
                parameters: (params.clone().min().unwrap_or(0), params.max().unwrap_or(0)),
                memory_bytes: e.trials.iter().map(memory_bytes).max().unwrap_or(0),
                stopping: e.stopping.zip(expected).map(|(spec, x)| StoppingPlan {
                    rule: spec.rule,
                    epochs: x.share
                        * e.trials
                            .iter()
                            .map(|t| f64::from(t.params.epochs))
                            .sum::<f64>(),
                    simulated: x.simulated,
                }),
                measured_memory,
                compute_seconds,
            }
        })
        .collect();
    let of_kind = |w: Kind| kinds.iter().position(|&k| k == w).unwrap_or(0);
    let lanes: Vec<usize> = workers.iter().map(|&w| of_kind(w)).collect();
    let known: Option<Vec<Vec<f64>>> = durations
        .into_iter()
        .map(|per_kind| per_kind.into_iter().collect())
        .collect();
    Plan {
        experiments,
        wall_seconds: known.map(|d| makespan(&d, &lanes)),
    }
}

/// The wall time of trials taking `durations[trial][kind]` seconds on workers of the kinds
/// `workers[worker]` (indices into a trial's durations), each trial, in grid order (the order
/// the coordinator leases them in), on the first worker free.
pub fn makespan(durations: &[Vec<f64>], workers: &[usize]) -> f64 {
    let mut free: Vec<(f64, usize)> = workers.iter().map(|&k| (0.0, k)).collect();
    if free.is_empty() {
        return 0.0;
    }
    for d in durations {
        if let Some(slot) = free.iter_mut().min_by(|a, b| a.0.total_cmp(&b.0)) {
            slot.0 += d.get(slot.1).copied().unwrap_or(0.0);
        }
    }
    free.into_iter().map(|(t, _)| t).fold(0.0, f64::max)
}

/// `--workers cpu:2,gpu:4`: one entry per worker, CPUs first.
pub fn parse_workers(s: &str) -> Result<Vec<Kind>, String> {
    let (mut cpu, mut gpu) = (0u32, 0u32);
    for part in s.split(',') {
        let (kind, n) = part.split_once(':').unwrap_or((part, "1"));
        let n: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|&n| (1..=MAX_WORKERS).contains(&n))
            .ok_or_else(|| {
                format!("{part:?}: the count after ':' must be a number from 1 to {MAX_WORKERS}")
            })?;
        match kind.trim() {
            "cpu" => cpu += n,
            "gpu" => gpu += n,
            other => return Err(format!("{other:?} is not a worker kind: cpu:N or gpu:N")),
        }
    }
    if cpu + gpu > MAX_WORKERS {
        return Err(format!("more than {MAX_WORKERS} workers"));
    }
    let mut workers = vec![Kind::Cpu; cpu as usize];
    workers.extend(std::iter::repeat_n(Kind::Gpu, gpu as usize));
    Ok(workers)
}

/// Most workers `--workers` may name.
pub const MAX_WORKERS: u32 = 100_000;

/// Seconds as people read them: `45 s`, `12 min`, `3 h 20 min`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.round().max(0.0) as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A size in MiB, as the plan prints it.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One value per kind: the value alone, or with its kind's name (`cpu 3 min, gpu 10 s`) when
/// `named` (the plan has several kinds).
fn per_kind<T>(values: &[(Kind, T)], named: bool, show: impl Fn(&T) -> String) -> String {
    match values {
        [] => "-".to_owned(),
        [(_, v)] if !named => show(v),
        _ => values
            .iter()
            .map(|(k, v)| format!("{} {}", k.name(), show(v)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The plan as text; `source` says where the speed came from (`None`: unknown).
pub fn text(plan: &Plan, workers: &str, source: Option<&str>) -> String {
    let measured = plan
        .experiments
        .iter()
        .any(|e| !e.measured_memory.is_empty());
    let mut out = format!(
        "{:<24} {:>7} {:>8} {:>23} {:>12} {:>14}",
        "experiment", "trials", "epochs", "parameters per model", "memory/trial", "compute"
    );
    if measured {
        out.push_str(&format!(" {:>14}", "measured mem."));
    }
    out.push('\n');
    for e in &plan.experiments {
        let named = e.compute_seconds.len() > 1;
        let params = if e.parameters.0 == e.parameters.1 {
            e.parameters.0.to_string()
        } else {
            format!("{}-{}", e.parameters.0, e.parameters.1)
        };
        out.push_str(&format!(
            "{:<24} {:>7} {:>8} {:>23} {:>12} {:>14}",
            sweep_common::text::terminal(&e.name),
            e.trials,
            e.epochs,
            params,
            mib(e.memory_bytes),
            per_kind(&e.compute_seconds, named, |s| duration(*s)),
        ));
        if measured {
            let memory = per_kind(&e.measured_memory, named, |b| mib(*b));
            out.push_str(&format!(" {memory:>14}"));
        }
        out.push('\n');
    }
    for e in &plan.experiments {
        if let Some(sp) = e.stopping {
            let how = if sp.simulated {
                format!(
                    "the rule simulated {SIMULATIONS} times on these workers over curves that \
                     rank the configurations at random"
                )
            } else {
                "each rung passing its share of the configurations".to_owned()
            };
            out.push_str(&format!(
                "{}: early stopping ({}): about {:.0} of its {} epochs expected ({how}); the \
                 times count these\n",
                sweep_common::text::terminal(&e.name),
                sp.rule.name(),
                sp.epochs,
                e.epochs,
            ));
        }
    }
    match (plan.wall_seconds, source) {
        (Some(wall), Some(source)) => out.push_str(&format!(
            "estimated wall time on {workers}: {} ({source})\n",
            duration(wall),
        )),
        (None, Some(source)) => out.push_str(&format!(
            "no wall time: some trials' time is unknown (program trials, or models the \
             calibration could not run; {source})\n"
        )),
        (_, None) => out.push_str(
            "no time estimate: give --calibrate (times each model on this machine) or --from \
             DIR, the output folder of an earlier sweep on these machines (its results.json's \
             epoch times)\n",
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
        let p = plan(&grid, &Speed::Unknown, &[Kind::Cpu, Kind::Cpu]);
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
        assert!(p1.compute_seconds.is_empty() && p1.measured_memory.is_empty());
        assert!(text(&p, "cpu:2", None).contains("no time estimate"));
    }

    #[test]
    fn time_follows_the_work_and_the_workers() {
        let grid = Grid::parse(LAB1, "lab1.toml").expect("lab1.toml");
        let speed = Speed::Recorded(1e-9);
        let one = plan(&grid, &speed, &[Kind::Cpu]);
        let four = plan(&grid, &speed, &[Kind::Cpu; 4]);
        let compute: f64 = one
            .experiments
            .iter()
            .flat_map(|e| e.compute_seconds.iter().map(|(_, s)| s))
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
        let one_kind = |d: &[f64]| d.iter().map(|&s| vec![s]).collect::<Vec<_>>();
        assert_eq!(
            makespan(&one_kind(&[3.0, 3.0, 2.0, 2.0, 2.0]), &[0, 0]),
            7.0
        );
        assert_eq!(makespan(&one_kind(&[1.0, 1.0, 4.0]), &[0, 0]), 5.0);
        assert_eq!(makespan(&one_kind(&[5.0, 1.0, 1.0]), &[0; 4]), 5.0);
        assert_eq!(makespan(&[], &[0, 0]), 0.0);
        assert_eq!(makespan(&one_kind(&[1.0]), &[]), 0.0);
    }

    #[test]
    fn each_worker_takes_its_own_kinds_time() {
        // Trials of 10 s on a CPU and 1 s on a GPU; one of each worker. The CPU takes the
        // first trial (both free, the CPU listed first), the GPU the next nine.
        let trials = vec![vec![10.0, 1.0]; 10];
        assert_eq!(makespan(&trials, &[0, 1]), 10.0);
        // Two GPUs alone: 5 each.
        assert_eq!(makespan(&trials, &[1, 1]), 5.0);
    }

    #[test]
    fn calibrated_times_per_kind_and_model() {
        let grid = Grid::parse(LAB1, "lab1.toml").expect("lab1.toml");
        let cost = |train: f64, memory| Cost {
            train_seconds_per_image: train,
            eval_seconds_per_image: train / 3.0,
            memory_bytes: memory,
        };
        let mut costs = HashMap::new();
        for t in grid.experiments.iter().flat_map(|e| &e.trials) {
            let key = cost_key(t);
            costs.insert((Kind::Cpu, key.clone()), cost(1e-4, Some(100 << 20)));
            costs.insert((Kind::Gpu, key), cost(1e-6, None));
        }
        // The nine part-1 models and part 2's one (its trials differ only in train_fraction).
        assert_eq!(costs.len(), 2 * 10);
        let speed = Speed::Calibrated(costs);
        let p = plan(&grid, &speed, &[Kind::Cpu, Kind::Gpu]);
        let p2 = &p.experiments[1];
        // Part 2: 42 000 x (0.2 + 0.4 + 0.6 + 0.8 + 1.0) training images and 18 000 evaluated,
        // 30 epochs each, at 1e-4 and 1e-4 / 3 s per image.
        let cpu = 30.0 * (42_000.0 * 3.0 * 1e-4 + 5.0 * 18_000.0 * 1e-4 / 3.0);
        let (kind, seconds) = p2.compute_seconds[0];
        assert_eq!(kind, Kind::Cpu);
        assert!(
            (seconds - cpu).abs() < 1e-6 * cpu,
            "{seconds} against {cpu}"
        );
        assert_eq!(p2.compute_seconds[1].0, Kind::Gpu);
        assert_eq!(p2.measured_memory, vec![(Kind::Cpu, 100 << 20)]);
        assert!(p.wall_seconds.is_some());
        let shown = text(&p, "cpu:1,gpu:1", Some("calibrated"));
        assert!(shown.contains("measured mem."), "{shown}");
        assert!(shown.contains("cpu 100.0 MiB"), "{shown}");
        assert!(
            shown.contains("estimated wall time on cpu:1,gpu:1"),
            "{shown}"
        );
        // A model not calibrated: no wall time, said so.
        let p = plan(&grid, &Speed::Calibrated(HashMap::new()), &[Kind::Cpu]);
        assert_eq!(p.wall_seconds, None);
        assert!(text(&p, "cpu:1", Some("calibrated")).contains("no wall time"));
    }

    #[test]
    fn early_stopping_plans_the_epochs_it_expects() {
        let text_of = include_str!("../../../examples/asha-fashion.toml");
        let grid = Grid::parse(text_of, "asha-fashion.toml").expect("grid");
        let p = plan(&grid, &Speed::Recorded(1e-9), &[Kind::Cpu; 2]);
        let e = &p.experiments[0];
        let sp = e.stopping.expect("a rule");
        assert_eq!(sp.rule.name(), "asha");
        assert!(sp.simulated);
        // 12 configurations x 2 seeds x 6 epochs, rungs at 1 and 3: every trial trains to the
        // first rung, and some are stopped.
        assert!(
            sp.epochs >= 24.0 && sp.epochs < e.epochs as f64,
            "{} of {}",
            sp.epochs,
            e.epochs
        );
        let full: f64 = grid.experiments[0]
            .trials
            .iter()
            .map(|t| epoch_work(t) * 1e-9 * f64::from(t.params.epochs))
            .sum();
        let (_, compute) = e.compute_seconds[0];
        assert!(
            (compute - full * sp.epochs / e.epochs as f64).abs() < 1e-9 * full,
            "{compute} against {full}"
        );
        let shown = text(&p, "cpu:2", Some("x"));
        assert!(shown.contains("early stopping (asha): about"), "{shown}");
        assert!(shown.contains("simulated 8 times"), "{shown}");
        // The same simulation gives the same plan.
        assert_eq!(plan(&grid, &Speed::Recorded(1e-9), &[Kind::Cpu; 2]), p);
    }

    #[test]
    fn an_experiment_too_large_to_simulate_takes_the_nominal_shares() {
        let widths: Vec<String> = (1..=2_000).map(|w| w.to_string()).collect();
        let text_of = format!(
            "[sweep]\nname = \"big\"\n[[experiment]]\nname = \"e\"\ndataset = \"mnist\"\n\
             [experiment.fixed]\nepochs = 60\n[experiment.grid]\nhidden_width = [{}]\n\
             [experiment.stopping]\nrule = \"asha\"\nmin_epochs = 1\nreduction = 3\n",
            widths.join(", ")
        );
        let grid = Grid::parse(&text_of, "big.toml").expect("grid");
        let p = plan(&grid, &Speed::Unknown, &[Kind::Cpu]);
        let sp = p.experiments[0].stopping.expect("a rule");
        assert!(!sp.simulated);
        let rule = grid.experiments[0].stopping.expect("rule").rule;
        let nominal = stopping::expected_epochs(&rule, 60).expect("asha") * 2_000.0;
        assert!((sp.epochs - nominal).abs() < 1e-6, "{}", sp.epochs);
        assert!(text(&p, "cpu:1", None).contains("each rung passing its share"));
    }

    #[test]
    fn the_cost_key_ignores_what_does_not_change_a_step() {
        let grid = Grid::parse(LAB1, "lab1.toml").expect("lab1.toml");
        let (p1, p2) = (&grid.experiments[0].trials, &grid.experiments[1].trials);
        let mut t = p2[0].clone();
        let key = cost_key(&t);
        assert!(p2.iter().all(|o| cost_key(o) == key), "train_fraction only");
        t.params.learning_rate = 0.5;
        t.params.seed = 7;
        t.params.epochs = 3;
        assert_eq!(cost_key(&t), key);
        t.params.batch_size = 7;
        assert_ne!(cost_key(&t), key);
        assert_ne!(cost_key(&p1[0]), cost_key(&p1[1]));
    }

    #[test]
    fn worker_sets() {
        use Kind::{Cpu, Gpu};
        assert_eq!(parse_workers("gpu:1,cpu:2"), Ok(vec![Cpu, Cpu, Gpu]));
        assert_eq!(parse_workers("cpu"), Ok(vec![Cpu]));
        assert!(parse_workers("cpu:100001").is_err());
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
