//! The few TensorFlow/TensorBoard protobuf messages the event files need, as prost messages.
//!
//! Trimmed copies (only the fields we write, with their upstream field numbers and types) of
//! `tensorboard/compat/proto/event.proto` and `summary.proto`, and of
//! `tensorboard/plugins/hparams/api.proto` and `plugin_data.proto`, from
//! <https://github.com/tensorflow/tensorboard> (Apache License 2.0, Copyright The TensorFlow
//! Authors). The wire format depends only on the field numbers and types, so a reader built from
//! the full files (TensorBoard's own) decodes these; `tests/tests/tensorboard_files.rs` checks
//! that with TensorBoard's Python reader. `google.protobuf.Value`/`ListValue` are prost-types'.

pub use prost_types::{ListValue, Value as PbValue, value::Kind};

/// `tensorflow.Event` (event.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step (here: the epoch).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// `oneof what`: `file_version` (3) or `summary` (5).
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

/// `tensorflow.Event.what`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// `"brain.Event:2"`, the first event of every file.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Summary values.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary` (summary.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The tag (a curve's name, or `_hparams_/...`).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// `oneof value`: `simple_value` (2), a scalar.
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    /// Which plugin owns the value, and its content.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

/// `tensorflow.SummaryMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin's data.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// `tensorflow.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// `"hparams"`.
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// A serialized [`HParamsPluginData`].
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorboard.hparams.HParamsPluginData` (plugin_data.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// The plugin data's version: 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// `oneof data`.
    #[prost(oneof = "HParamsData", tags = "2, 3, 4")]
    pub data: Option<HParamsData>,
}

/// `tensorboard.hparams.HParamsPluginData.data`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamsData {
    /// The experiment: its hyperparameters' domains and its metrics.
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    /// A trial's hyperparameters.
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    /// A trial's end.
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

/// `tensorboard.hparams.Experiment` (api.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Experiment {
    /// A description.
    #[prost(string, tag = "1")]
    pub description: String,
    /// The hyperparameters.
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    /// The metrics.
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
    /// The experiment's name.
    #[prost(string, tag = "6")]
    pub name: String,
}

/// `tensorboard.hparams.HParamInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamInfo {
    /// The key (as in the grid).
    #[prost(string, tag = "1")]
    pub name: String,
    /// The help text.
    #[prost(string, tag = "3")]
    pub description: String,
    /// `tensorboard.hparams.DataType`: see [`DATA_TYPE_STRING`], [`DATA_TYPE_FLOAT64`].
    #[prost(int32, tag = "4")]
    pub r#type: i32,
    /// `oneof domain`: `domain_discrete` (5), the values the trials take.
    #[prost(message, optional, tag = "5")]
    pub domain_discrete: Option<ListValue>,
}

/// `DataType.DATA_TYPE_STRING`.
pub const DATA_TYPE_STRING: i32 = 1;
/// `DataType.DATA_TYPE_FLOAT64`.
pub const DATA_TYPE_FLOAT64: i32 = 3;

/// `tensorboard.hparams.MetricInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricInfo {
    /// The metric's tag.
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
    /// What it measures.
    #[prost(string, tag = "4")]
    pub description: String,
}

/// `tensorboard.hparams.MetricName`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricName {
    /// The run, relative to the session's: empty.
    #[prost(string, tag = "1")]
    pub group: String,
    /// The scalar's tag.
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// The trial's hyperparameters by key.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: std::collections::BTreeMap<String, PbValue>,
    /// Seconds since the epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `tensorboard.hparams.SessionEndInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    /// `tensorboard.hparams.Status`: see [`STATUS_SUCCESS`] and the others.
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// Seconds since the epoch.
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `Status.STATUS_SUCCESS`.
pub const STATUS_SUCCESS: i32 = 1;
/// `Status.STATUS_FAILURE`.
pub const STATUS_FAILURE: i32 = 2;
/// `Status.STATUS_RUNNING`.
pub const STATUS_RUNNING: i32 = 3;
