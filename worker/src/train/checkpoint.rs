//! Checkpoints and final weights as safetensors files.
//!
//! A checkpoint holds the model's parameters (`0.weight`, `0.bias`, `2.weight`, ...), Adam's moments
//! (`adam.exp_avg.<name>`, `adam.exp_avg_sq.<name>`), and in its metadata the trial id, the
//! number of epochs completed, Adam's step count and the metrics of those epochs. Nothing else is
//! needed to continue exactly: every random choice of a later epoch is derived from the trial's
//! seed and the epoch number (see `common::rng`), not from a generator's running state.

use std::borrow::Cow;
use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, View};
use sweep_common::{EpochMetrics, TrialSpec};
use tch::{Device, Kind, Tensor};

use super::TrainError;

/// Format tag written in every checkpoint's metadata.
pub const FORMAT: &str = "sweep-checkpoint-v1";

/// A float32 tensor copied to the host, ready to serialize.
struct HostTensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn to_host(t: &Tensor) -> Result<HostTensor, TrainError> {
    let t = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?;
    let shape = t
        .size()
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    let values = Vec::<f32>::try_from(t.f_flatten(0, -1)?)?;
    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok(HostTensor { shape, bytes })
}

fn corrupt(message: impl Into<String>) -> TrainError {
    TrainError::Checkpoint(message.into())
}

/// Serializes named float tensors with string metadata. The same tensors and metadata give the
/// same bytes, every time: tensors are in the order safetensors sorts them, and the metadata's
/// keys in sorted order (see [`with_metadata`]).
pub fn encode(
    tensors: &[(String, &Tensor)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, TrainError> {
    let host = tensors
        .iter()
        .map(|(name, t)| Ok((name.clone(), to_host(t)?)))
        .collect::<Result<Vec<_>, TrainError>>()?;
    let bare = safetensors::serialize(host.iter().map(|(n, t)| (n.as_str(), t)), None)
        .map_err(|e| corrupt(format!("cannot encode: {e}")))?;
    with_metadata(&bare, &metadata.into_iter().collect())
}

/// Length of the header-size prefix of a safetensors file.
const PREFIX: usize = 8;

/// `bare` (a safetensors file without metadata) with `metadata` as its `__metadata__`, keys in
/// sorted order. safetensors writes the metadata from a `HashMap`, whose order changes from one
/// map to the next, so identical weights would give different bytes (and hashes); the header is
/// a JSON object whose tensors' offsets are relative to the data after it, so the metadata can be
/// put first without touching anything else.
fn with_metadata(
    bare: &[u8],
    metadata: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<u8>, TrainError> {
    let bad = || corrupt("cannot encode: unexpected safetensors header");
    let len = bare
        .get(..PREFIX)
        .and_then(|b| <[u8; PREFIX]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(bad)?;
    let header = bare.get(PREFIX..PREFIX + len).ok_or_else(bad)?;
    let data = &bare[PREFIX + len..];
    let tensors = std::str::from_utf8(header)
        .map_err(|_| bad())?
        .trim_end()
        .strip_prefix('{')
        .and_then(|h| h.strip_suffix('}'))
        .ok_or_else(bad)?;
    let meta = serde_json::to_string(metadata).map_err(|e| corrupt(e.to_string()))?;
    let mut json = format!("{{\"__metadata__\":{meta}");
    if !tensors.is_empty() {
        json.push(',');
        json.push_str(tensors);
    }
    json.push('}');
    // The data stays aligned to 8 bytes, as safetensors pads it.
    while json.len() % PREFIX != 0 {
        json.push(' ');
    }
    let mut out = Vec::with_capacity(PREFIX + json.len() + data.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

/// A decoded checkpoint.
pub struct Decoded {
    /// Metadata.
    pub metadata: HashMap<String, String>,
    /// Tensors by name, on the CPU.
    pub tensors: HashMap<String, Tensor>,
}

/// Parses a safetensors file.
pub fn decode(bytes: &[u8]) -> Result<Decoded, TrainError> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| corrupt(format!("not a safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| corrupt(format!("not a safetensors file: {e}")))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(corrupt(format!(
                "tensor {name} is {:?}, expected F32",
                view.dtype()
            )));
        }
        let shape: Vec<i64> = view
            .shape()
            .iter()
            .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
            .collect();
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.insert(
            name,
            Tensor::f_from_slice(&values)?.f_reshape(shape.as_slice())?,
        );
    }
    Ok(Decoded { metadata, tensors })
}

/// The metadata of a checkpoint of `spec`: its id, and its lineage's when it has one
/// (`TrialSpec::lineage_id`), so that the same trial asked for more epochs continues it.
pub fn metadata(
    spec: &TrialSpec,
    epochs: &[EpochMetrics],
    adam_step: i64,
) -> Result<HashMap<String, String>, TrainError> {
    let epochs_json = serde_json::to_string(epochs).map_err(|e| corrupt(e.to_string()))?;
    let mut m = HashMap::from([
        ("format".to_owned(), FORMAT.to_owned()),
        ("trial".to_owned(), spec.id.to_string()),
        ("epoch".to_owned(), epochs.len().to_string()),
        ("adam_step".to_owned(), adam_step.to_string()),
        ("epochs".to_owned(), epochs_json),
    ]);
    if let Some(lineage) = spec.lineage_id() {
        m.insert(LINEAGE.to_owned(), lineage.to_string());
    }
    Ok(m)
}

/// The metadata key of a checkpoint's lineage id.
const LINEAGE: &str = "lineage";

/// Reads back what [`metadata`] wrote, checking the format and the trial: `spec`'s own, or,
/// for a trial that grows exactly, one of its lineage (the same trial with fewer epochs: an
/// edited grid file asked for more).
pub fn read_metadata(
    m: &HashMap<String, String>,
    spec: &TrialSpec,
) -> Result<(Vec<EpochMetrics>, i64), TrainError> {
    let trial = spec.id;
    let get = |k: &str| {
        m.get(k)
            .ok_or_else(|| corrupt(format!("checkpoint metadata lacks {k:?}")))
    };
    if get("format")? != FORMAT {
        return Err(corrupt(format!(
            "unknown checkpoint format {:?}",
            get("format")?
        )));
    }
    let lineage = spec.lineage_id().map(|l| l.to_string());
    let same_lineage = lineage.is_some() && m.get(LINEAGE) == lineage.as_ref();
    if get("trial")? != &trial.to_string() && !same_lineage {
        return Err(corrupt(format!(
            "checkpoint of trial {} given to trial {trial}",
            get("trial")?
        )));
    }
    let epochs: Vec<EpochMetrics> = serde_json::from_str(get("epochs")?)
        .map_err(|e| corrupt(format!("bad epochs metadata: {e}")))?;
    let step = get("adam_step")?
        .parse()
        .map_err(|_| corrupt("bad adam_step metadata"))?;
    Ok((epochs, step))
}
