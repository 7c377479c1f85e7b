//! TensorBoard event files from `results.json`: every trial's curves (per epoch: `train_loss`,
//! `train_accuracy`, `test_accuracy`) and its hyperparameters (the HParams plugin's session
//! summaries) under `OUT/tensorboard/<trial name>/`, and the experiment (every hyperparameter's
//! values, the metrics) in `OUT/tensorboard/`, so `tensorboard --logdir OUT/tensorboard` shows a
//! sweep beside other runs. Written with the report (`report::write`), from the same document.
//!
//! `render` is pure (no clock, no disk): the same results give the same bytes. `results.json`
//! has no start times, so an event's wall time is the trial's training seconds up to that epoch
//! (TensorBoard's "relative" axis is right; its "wall" axis starts in 1970).

mod wire;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use prost::Message;
use sweep_common::grid::{Identity, Param, Value};
use sweep_common::results::{Results, Status, Trial};

use wire::{
    Event, Experiment, HParamInfo, HParamsData, HParamsPluginData, Kind, ListValue, MetricInfo,
    MetricName, PbValue, PluginData, SessionEndInfo, SessionStartInfo, Summary, SummaryMetadata,
    SummaryValue, What,
};

/// The folder under the output folder.
pub const DIR: &str = "tensorboard";

/// The name of every event file we write (TensorBoard reads files whose name holds `tfevents`).
pub const EVENT_FILE: &str = "events.out.tfevents.0.sweep";

/// The per-epoch curves, by tag.
pub const METRICS: [(&str, &str); 3] = [
    (
        "train_loss",
        "mean cross-entropy loss over the epoch's training batches",
    ),
    (
        "train_accuracy",
        "accuracy (%) on the training batches as they were trained",
    ),
    (
        "test_accuracy",
        "accuracy (%) on the test split after the epoch",
    ),
];

/// Most trials given a run (the first, in `results.json`'s order): a run is a folder, and a
/// million of them take this disk most of an hour to write and TensorBoard more to read; every
/// trial's curve is in `epochs.csv`.
pub const MAX_RUNS: usize = 100_000;

/// One event file: its path under `OUT/tensorboard/` and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFile {
    /// Relative to `OUT/tensorboard/`: `EVENT_FILE` or `<run>/EVENT_FILE`.
    pub path: PathBuf,
    /// TFRecord-framed `Event`s.
    pub bytes: Vec<u8>,
}

/// The experiment's file, then one file per trial, in `results.json`'s order.
pub fn render(results: &Results<'_>) -> Vec<EventFile> {
    let mut runs = Runs::default();
    let mut files: Vec<EventFile> = results.trials.iter().filter_map(|t| runs.add(t)).collect();
    files.insert(0, runs.experiment_file(results));
    files
}

/// The event files made a trial at a time (what [`render`] makes whole): each trial's run as it
/// comes, then the experiment's file from what the trials held.
#[derive(Default)]
pub struct Runs {
    /// Run names given so far (a repeated name gets the trial's id).
    names: HashSet<String>,
    /// Runs given so far.
    runs: usize,
    /// Every hyperparameter's values, in first-seen order.
    domains: Domains,
}

impl Runs {
    /// The run of `t`, named apart from the runs before it; none past the first [`MAX_RUNS`]
    /// trials (whose hyperparameters still count in the experiment's domains).
    pub fn add(&mut self, t: &Trial<'_>) -> Option<EventFile> {
        self.domains.add(t);
        if self.runs >= MAX_RUNS {
            return None;
        }
        self.runs += 1;
        let mut run = run_name(&t.name);
        if !self.names.insert(run.clone()) {
            run = format!("{run}_{}", t.id);
            self.names.insert(run.clone());
        }
        Some(EventFile {
            path: Path::new(&run).join(EVENT_FILE),
            bytes: records(&trial_events(t)),
        })
    }

    /// The experiment's file: `header`'s sweep and the domains of the trials added.
    pub fn experiment_file(&self, header: &Results<'_>) -> EventFile {
        EventFile {
            path: PathBuf::from(EVENT_FILE),
            bytes: records(&[
                file_version(),
                hparams_event(0, 0.0, experiment(header, &self.domains)),
            ]),
        }
    }
}

/// Each hyperparameter (by its place in a trial's values) and the values the trials take, in
/// first-seen order.
#[derive(Default)]
struct Domains(BTreeMap<usize, (Param, Vec<Value>, HashSet<Identity>)>);

impl Domains {
    fn add(&mut self, t: &Trial<'_>) {
        for (i, (p, v)) in t.params.values().enumerate() {
            let (_, values, seen) = self
                .0
                .entry(i)
                .or_insert_with(|| (p, Vec::new(), HashSet::new()));
            // Equal values have the same identity (a NaN aside): the set spares a scan of
            // every value seen for each trial.
            if !seen.contains(&v.identity()) && !values.contains(&v) {
                seen.insert(v.identity());
                values.push(v);
            }
        }
    }
}

/// A trial's name as a single path component: anything but letters, digits, `-`, `_`, `.`,
/// `=` and `,` becomes `_`, and a name of dots only gets a `_` in front.
pub fn run_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.=,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.chars().all(|c| c == '.') {
        s.insert(0, '_');
    }
    s
}

fn file_version() -> Event {
    Event {
        wall_time: 0.0,
        step: 0,
        what: Some(What::FileVersion("brain.Event:2".to_owned())),
    }
}

fn summary(step: i64, wall_time: f64, value: Vec<SummaryValue>) -> Event {
    Event {
        wall_time,
        step,
        what: Some(What::Summary(Summary { value })),
    }
}

/// The HParams plugin's summary: tag `_hparams_/<kind>`, the content in the metadata.
fn hparams_event(step: i64, wall_time: f64, data: HParamsData) -> Event {
    let tag = match data {
        HParamsData::Experiment(_) => "_hparams_/experiment",
        HParamsData::SessionStartInfo(_) => "_hparams_/session_start_info",
        HParamsData::SessionEndInfo(_) => "_hparams_/session_end_info",
    };
    let content = HParamsPluginData {
        version: 0,
        data: Some(data),
    }
    .encode_to_vec();
    summary(
        step,
        wall_time,
        vec![SummaryValue {
            tag: tag.to_owned(),
            simple_value: None,
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "hparams".to_owned(),
                    content,
                }),
            }),
        }],
    )
}

fn pb_value(v: Value) -> PbValue {
    PbValue {
        kind: Some(match v {
            Value::Choice(c) => Kind::StringValue(c.name.to_owned()),
            Value::Text(t) => Kind::StringValue(t.to_owned()),
            Value::Int(i) => Kind::NumberValue(i as f64),
            Value::Float(x) => Kind::NumberValue(x),
        }),
    }
}

/// Every hyperparameter with the values the trials take (in first-seen order), and the metrics.
fn experiment(results: &Results<'_>, domains: &Domains) -> HParamsData {
    let hparam_infos = domains
        .0
        .values()
        .map(|(p, values, _)| HParamInfo {
            name: p.key().to_owned(),
            description: String::new(),
            r#type: match values.first() {
                Some(Value::Choice(_)) => wire::DATA_TYPE_STRING,
                _ => wire::DATA_TYPE_FLOAT64,
            },
            domain_discrete: Some(ListValue {
                values: values.iter().copied().map(pb_value).collect(),
            }),
        })
        .collect();
    let metric_infos = METRICS
        .iter()
        .map(|(tag, description)| MetricInfo {
            name: Some(MetricName {
                group: String::new(),
                tag: (*tag).to_owned(),
            }),
            description: (*description).to_owned(),
        })
        .collect();
    HParamsData::Experiment(Experiment {
        description: format!("sweep {} ({})", results.sweep, results.grid_file),
        hparam_infos,
        metric_infos,
        name: results.sweep.clone(),
    })
}

/// The session's start (its hyperparameters), one event per epoch, and its end when it has one.
fn trial_events(t: &Trial<'_>) -> Vec<Event> {
    let hparams = t
        .params
        .values()
        .map(|(p, v)| (p.key().to_owned(), pb_value(v)))
        .collect();
    let mut events = vec![
        file_version(),
        hparams_event(
            0,
            0.0,
            HParamsData::SessionStartInfo(SessionStartInfo {
                hparams,
                start_time_secs: 0.0,
            }),
        ),
    ];
    let mut clock = 0.0;
    for e in t.epochs.iter() {
        if e.seconds.is_finite() && e.seconds > 0.0 {
            clock += e.seconds;
        }
        let values = [e.train_loss, e.train_accuracy, e.test_accuracy]
            .into_iter()
            .zip(METRICS)
            .map(|(x, (tag, _))| SummaryValue {
                tag: tag.to_owned(),
                // TensorBoard's scalars are 32-bit.
                simple_value: Some(x as f32),
                metadata: None,
            })
            .collect();
        events.push(summary(i64::from(e.epoch), clock, values));
    }
    let status = match t.status {
        Status::Succeeded => Some(wire::STATUS_SUCCESS),
        Status::Failed => Some(wire::STATUS_FAILURE),
        Status::Running => Some(wire::STATUS_RUNNING),
        // Its curve is whole up to the rung, and it may be promoted: the plugin has no word for
        // it, and "unknown" would hide it from the default filters.
        Status::Stopped => Some(wire::STATUS_SUCCESS),
        Status::Pending => None,
    };
    if let Some(status) = status {
        let step = t.epochs.last().map_or(0, |e| i64::from(e.epoch));
        events.push(hparams_event(
            step,
            clock,
            HParamsData::SessionEndInfo(SessionEndInfo {
                status,
                end_time_secs: clock,
            }),
        ));
    }
    events
}

/// TFRecord framing: per record, its length (u64, little-endian), the masked CRC-32C of those 8
/// bytes, the data, and the masked CRC-32C of the data.
fn records(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        let data = e.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        out.extend_from_slice(&len);
        out.extend_from_slice(&masked_crc(&len).to_le_bytes());
        out.extend_from_slice(&data);
        out.extend_from_slice(&masked_crc(&data).to_le_bytes());
    }
    out
}

/// TFRecord's masked CRC-32C (so that a CRC of data holding CRCs is not a CRC of a CRC).
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes `render(results)` under `out_dir/tensorboard/`, each file atomically; returns the
/// paths written.
pub fn write(out_dir: &Path, results: &Results<'_>) -> Result<Vec<PathBuf>, crate::report::Error> {
    render(results)
        .iter()
        .map(|f| write_event_file(out_dir, f))
        .collect()
}

/// Writes `f` under `out_dir/tensorboard/`, atomically, making its folder; returns its path.
pub fn write_event_file(out_dir: &Path, f: &EventFile) -> Result<PathBuf, crate::report::Error> {
    let path = out_dir.join(DIR).join(&f.path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| crate::report::Error::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    crate::report::write_file(&path, &f.bytes)?;
    Ok(path)
}

#[cfg(test)]
mod tests;
