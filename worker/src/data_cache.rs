//! Datasets resident on the training device: each is decoded once per worker process, kept as
//! one u8 image tensor and one label tensor on the device, and shared by every trial.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sweep_common::DatasetKind;
use sweep_common::data::{DataError, load_train_set};
use tch::{Device, Kind, Tensor};
use tokio::sync::Mutex;

/// A decoded training set on a device: images `[n, input_len]` u8, labels `[n]` i64.
pub struct DeviceData {
    kind: DatasetKind,
    images: Tensor,
    labels: Tensor,
    len: usize,
}

// SAFETY: `Tensor` is `Send` but not `Sync` because tch cannot know how a tensor will be used.
// A `DeviceData` is built once and never mutated afterwards: trials only read its tensors
// through operations that allocate new tensors (`index_select`), and libtorch supports
// concurrent reads of one tensor from several threads.
#[allow(unsafe_code)]
unsafe impl Sync for DeviceData {}

impl DeviceData {
    /// Decodes `kind` from `data_dir` and moves it to `device`.
    pub fn load(
        kind: DatasetKind,
        data_dir: &std::path::Path,
        device: Device,
    ) -> Result<Self, LoadError> {
        let set = load_train_set(kind, data_dir)?;
        let len = set.len();
        let width = kind.input_len() as i64;
        let images = Tensor::f_from_slice(&set.images)?
            .f_reshape([len as i64, width])?
            .f_to_device(device)?;
        let labels = Tensor::f_from_slice(&set.labels)?
            .f_to_kind(Kind::Int64)?
            .f_to_device(device)?;
        Ok(Self {
            kind,
            images,
            labels,
            len,
        })
    }

    /// Which dataset.
    pub fn kind(&self) -> DatasetKind {
        self.kind
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device the tensors live on.
    pub fn device(&self) -> Device {
        self.images.device()
    }

    /// Images, `[n, input_len]` u8.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// Labels, `[n]` i64.
    pub fn labels(&self) -> &Tensor {
        &self.labels
    }
}

/// Why a dataset could not be made resident.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The files are missing or corrupt.
    #[error(transparent)]
    Data(#[from] DataError),
    /// libtorch failed (out of device memory, most likely).
    #[error("cannot move the dataset to the device: {0}")]
    Torch(#[from] tch::TchError),
    /// The loading thread panicked.
    #[error("dataset loader thread failed: {0}")]
    Join(String),
}

/// The datasets this worker has loaded, by kind. Loading happens at most once per kind; a
/// failed load is not cached (the files may be fixed while the worker runs).
pub struct DataCache {
    data_dir: PathBuf,
    device: Device,
    loaded: Mutex<HashMap<DatasetKind, Arc<DeviceData>>>,
}

impl DataCache {
    /// An empty cache reading from `data_dir` onto `device`.
    pub fn new(data_dir: PathBuf, device: Device) -> Self {
        Self {
            data_dir,
            device,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The dataset `kind`, loading it on first use (on a blocking thread).
    pub async fn get(&self, kind: DatasetKind) -> Result<Arc<DeviceData>, Arc<LoadError>> {
        // Held across the load on purpose: concurrent slots wait for one load instead of
        // decoding the same files twice.
        let mut loaded = self.loaded.lock().await;
        if let Some(d) = loaded.get(&kind) {
            return Ok(Arc::clone(d));
        }
        let dir = self.data_dir.clone();
        let device = self.device;
        let started = std::time::Instant::now();
        let data = tokio::task::spawn_blocking(move || DeviceData::load(kind, &dir, device))
            .await
            .map_err(|e| Arc::new(LoadError::Join(e.to_string())))?
            .map_err(Arc::new)?;
        tracing::info!(
            dataset = %kind,
            images = data.len(),
            seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
            "dataset loaded onto the device"
        );
        let data = Arc::new(data);
        loaded.insert(kind, Arc::clone(&data));
        Ok(data)
    }
}
