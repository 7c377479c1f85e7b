//! Domain types shared by the sweep coordinator and its workers: ids, the grid file and its
//! expansion into trial specs, per-epoch metrics, confusion matrices, dataset metadata, and the
//! failure kinds with their retry policies.
//!
//! This crate does no networking and links no libtorch. The readers of the official dataset files
//! are crate `sweep-data`.

pub mod architecture;
pub mod calibration;
pub mod dataset;
pub mod failure;
pub mod files;
pub mod grid;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod program;
pub mod results;
pub mod rng;
pub mod search;
pub mod text;
pub mod trial;

pub use dataset::{DatasetKind, OfficialFile};
pub use failure::FailureKind;
pub use ids::{TrialId, WorkerId};
pub use metrics::{ConfusionMatrix, EpochMetrics, FinalMetrics, Scalars, TrialResult};
pub use trial::{Activation, HyperParams, SplitSpec, TrialSpec};
