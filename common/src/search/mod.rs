//! Early stopping and sampled search spaces (issue 17): what a grid file's
//! `[experiment.stopping]` and `[experiment.sample]` tables say, as typed values, and the pure
//! logic that acts on them: the stopping rules ([`stopping`]) and the samplers ([`sample`]).
//!
//! Everything here is synchronous and deterministic: no clock, no I/O, no global randomness.
//! The same inputs give the same decisions and proposals, so a coordinator that journals its
//! inputs can replay them. The scheduler does not apply any of it yet (README.md, "Early
//! stopping and sampled search").

pub mod replay;
pub mod sample;
mod sobol;
pub mod stopping;
mod tpe;

use crate::grid::{Param, Value};

/// A metric that every epoch reports, which a stopping rule or a sampler can optimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Accuracy on the test part of the split (the default).
    TestAccuracy,
    /// Accuracy on the training subset.
    TrainAccuracy,
    /// Mean cross-entropy over the training subset.
    TrainLoss,
}

impl Metric {
    /// Every metric, in the order messages list them.
    pub const ALL: [Metric; 3] = [
        Metric::TestAccuracy,
        Metric::TrainAccuracy,
        Metric::TrainLoss,
    ];

    /// The name grid files use.
    pub fn name(self) -> &'static str {
        match self {
            Metric::TestAccuracy => "test_accuracy",
            Metric::TrainAccuracy => "train_accuracy",
            Metric::TrainLoss => "train_loss",
        }
    }

    /// The metric named `name`.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The direction that is better when a grid file does not say: up for accuracies, down for
    /// a loss.
    pub fn natural_mode(self) -> Mode {
        match self {
            Metric::TestAccuracy | Metric::TrainAccuracy => Mode::Max,
            Metric::TrainLoss => Mode::Min,
        }
    }

    /// The metric's value in one epoch's report.
    pub fn of(self, epoch: &crate::EpochMetrics) -> f64 {
        match self {
            Metric::TestAccuracy => epoch.test_accuracy,
            Metric::TrainAccuracy => epoch.train_accuracy,
            Metric::TrainLoss => epoch.train_loss,
        }
    }
}

/// Which direction of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Larger is better.
    Max,
    /// Smaller is better.
    Min,
}

impl Mode {
    /// Every mode, in the order messages list them.
    pub const ALL: [Mode; 2] = [Mode::Max, Mode::Min];

    /// The name grid files use.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Max => "max",
            Mode::Min => "min",
        }
    }

    /// The mode named `name`.
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// What a search optimises: a metric and its better direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Objective {
    /// The metric.
    pub metric: Metric,
    /// Its better direction.
    pub mode: Mode,
}

impl Default for Objective {
    fn default() -> Self {
        Objective {
            metric: Metric::TestAccuracy,
            mode: Mode::Max,
        }
    }
}

impl Objective {
    /// `value` as a score where larger is better; NaN (a diverged run) is the worst score.
    pub fn score(self, value: f64) -> f64 {
        if value.is_nan() {
            return f64::NEG_INFINITY;
        }
        match self.mode {
            Mode::Max => value,
            Mode::Min => -value,
        }
    }
}

/// An early-stopping rule with its parameters, as `[experiment.stopping]` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Asynchronous successive halving: rungs at `min_epochs * reduction^k`; a configuration
    /// goes past a rung only when it is in the top `1/reduction` of those that reached it.
    Asha {
        /// Epochs of the first rung.
        min_epochs: u32,
        /// Growth of the rungs and inverse of the fraction promoted (η).
        reduction: u32,
    },
    /// Several brackets of ASHA, bracket `b` starting its rungs at `min_epochs * reduction^b`;
    /// configurations are dealt to brackets in turn.
    Hyperband {
        /// Epochs of the first rung of bracket 0.
        min_epochs: u32,
        /// Growth of the rungs and inverse of the fraction promoted (η).
        reduction: u32,
        /// Number of brackets.
        brackets: u32,
    },
    /// Median stopping: from `min_epochs` on, a configuration whose best value so far is worse
    /// than the median of the other configurations' running means at the same epoch stops.
    Median {
        /// Epochs before any decision (the grace period).
        min_epochs: u32,
        /// Other configurations that must have reached the epoch before it is judged.
        min_trials: u32,
    },
}

impl Rule {
    /// The rules' names, as grid files write them.
    pub const NAMES: [&'static str; 3] = ["asha", "hyperband", "median"];

    /// The rule's name.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Asha { .. } => "asha",
            Rule::Hyperband { .. } => "hyperband",
            Rule::Median { .. } => "median",
        }
    }
}

/// `[experiment.stopping]`: a rule and what it optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoppingSpec {
    /// The rule.
    pub rule: Rule,
    /// The metric it compares and its better direction.
    pub objective: Objective,
}

/// How a sampled experiment draws its configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Independent uniform draws (in each key's own scale).
    Random,
    /// A scrambled Sobol low-discrepancy sequence.
    Sobol,
    /// Tree-structured Parzen estimators fitted on completed results.
    Tpe,
}

impl Method {
    /// Every method, in the order messages list them.
    pub const ALL: [Method; 3] = [Method::Random, Method::Sobol, Method::Tpe];

    /// The name grid files use.
    pub fn name(self) -> &'static str {
        match self {
            Method::Random => "random",
            Method::Sobol => "sobol",
            Method::Tpe => "tpe",
        }
    }

    /// The method named `name`.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The distribution one sampled key is drawn from. Bounds are within the key's domain in the
/// hyperparameter table (the grid checks say so).
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Uniform between two numbers (rounded to an integer for an integer key).
    Uniform {
        /// The smallest.
        low: f64,
        /// The largest.
        high: f64,
    },
    /// Uniform in the logarithm between two positive numbers (rounded for an integer key).
    LogUniform {
        /// The smallest, positive.
        low: f64,
        /// The largest.
        high: f64,
    },
    /// Uniform over the integers `low..=high`.
    Int {
        /// The smallest.
        low: u64,
        /// The largest.
        high: u64,
    },
    /// One of these values, each as likely.
    Choice(Vec<Value>),
}

impl Distribution {
    /// The distributions' names, as grid files write them.
    pub const NAMES: [&'static str; 4] = ["uniform", "loguniform", "int", "choice"];

    /// The distribution's name.
    pub fn name(&self) -> &'static str {
        match self {
            Distribution::Uniform { .. } => "uniform",
            Distribution::LogUniform { .. } => "loguniform",
            Distribution::Int { .. } => "int",
            Distribution::Choice(_) => "choice",
        }
    }
}

/// `[experiment.sample]`: how many configurations to draw, how, and from what.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSpec {
    /// Configurations to draw (each crossed with the experiment's grid axes, if any).
    pub trials: u32,
    /// How to draw them.
    pub method: Method,
    /// The sampler's seed.
    pub seed: u64,
    /// The sampled keys and their distributions, in axis order.
    pub space: Vec<(Param, Distribution)>,
}

impl SampleSpec {
    /// The configurations drawn when the grid is expanded: all of them for random and Sobol,
    /// whose draws need no results; TPE's first [`tpe::STARTUP`] (random) ones, the rest being
    /// proposed from results once the scheduler applies sampling.
    pub fn up_front(&self) -> u32 {
        match self.method {
            Method::Random | Method::Sobol => self.trials,
            Method::Tpe => self.trials.min(tpe::STARTUP as u32),
        }
    }
}
