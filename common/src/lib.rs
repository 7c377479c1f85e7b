//! Domain types shared by the sweep coordinator and its workers: ids, the grid file and its
//! expansion into trial specs, per-epoch metrics, confusion matrices, dataset metadata, and the
//! failure kinds with their retry policies.
//!
//! This crate does no networking and links no libtorch; the optional `data` feature adds the
//! readers of the official dataset files (and fixture writers for tests), used by the worker.

#[cfg(feature = "data")]
pub mod data;
pub mod dataset;
pub mod failure;
pub mod files;
pub mod grid;
pub mod ids;
pub mod metrics;
pub mod results;
pub mod rng;
pub mod text;
pub mod trial;

pub use dataset::DatasetKind;
pub use failure::FailureKind;
pub use ids::{TrialId, WorkerId};
pub use metrics::{ConfusionMatrix, EpochMetrics, TrialResult};
pub use trial::{Activation, HyperParams, SplitSpec, TrialSpec};
