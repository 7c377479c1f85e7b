//! Datasets resident on the training device: each is decoded once per worker process, kept as
//! one image tensor (u8, or f32 for a user's float32 `.npz`) and one label tensor on the device, and shared by every trial. A dataset
//! missing from the data folder is downloaded first (see [`crate::download`]) unless downloads
//! are disabled.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sweep_common::DatasetKind;
use sweep_data::{DataError, ImageSet, load_train_set};
use tch::{Device, Kind, Tensor};
use tokio::sync::Mutex;

use crate::download::{self, DownloadError, Downloads};

/// A decoded training set on a device: images `[n, input_len]` u8 (or f32, a user's float32
/// `.npz`), labels `[n]` i64.
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
    pub fn load(kind: DatasetKind, data_dir: &Path, device: Device) -> Result<Self, LoadError> {
        Self::from_image_set(&load_train_set(kind, data_dir)?, device)
    }

    /// Decodes `kind` from `data_dir` (downloading it first if it is not there and `downloads`
    /// allows) and moves it to `device`. Blocking.
    pub fn load_or_download(
        kind: DatasetKind,
        data_dir: &Path,
        downloads: &Downloads,
        device: Device,
    ) -> Result<Self, LoadError> {
        Self::from_image_set(&find_or_download(kind, data_dir, downloads)?, device)
    }

    /// Moves an already decoded set to `device`.
    pub fn from_image_set(set: &ImageSet, device: Device) -> Result<Self, LoadError> {
        let kind = set.kind;
        let len = set.len();
        let width = kind.input_len() as i64;
        let images = match &set.float_images {
            Some(floats) => Tensor::f_from_slice(floats)?,
            None => Tensor::f_from_slice(&set.images)?,
        };
        let images = images.f_reshape([len as i64, width])?.f_to_device(device)?;
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

    /// Images, `[n, input_len]` u8 or f32 (`train::pixel_scale` says how they become input).
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
    /// The files are missing and downloads are disabled.
    #[error("{not_found}; downloads are disabled (--offline): {hint}, or run without --offline")]
    Offline {
        /// The search that found nothing.
        not_found: Box<DataError>,
        /// What to put where.
        hint: String,
    },
    /// The files are missing and downloading them failed.
    #[error("{not_found}; downloading it failed: {source}")]
    Download {
        /// The search that found nothing.
        not_found: Box<DataError>,
        /// Why the download failed.
        #[source]
        source: DownloadError,
    },
    /// libtorch failed (out of device memory, most likely).
    #[error("cannot move the dataset to the device: {0}")]
    Torch(#[from] tch::TchError),
    /// The loading thread panicked.
    #[error("dataset loader thread failed: {0}")]
    Join(String),
}

/// Loads `kind` from `data_dir`; when it is not there, downloads it (unless offline) and loads
/// the download. Blocking.
///
/// Downloads go into `data_dir` itself when it can be written (created if needed), so the next
/// run finds them with the normal search; only when it cannot be written is the fallback folder
/// of `downloads` used, and then it is searched first for an earlier download.
pub fn find_or_download(
    kind: DatasetKind,
    data_dir: &Path,
    downloads: &Downloads,
) -> Result<ImageSet, LoadError> {
    let not_found = match load_train_set(kind, data_dir) {
        // A user's own file has no publisher to download it from.
        Err(e @ DataError::NotFound { .. }) if kind.own().is_none() => Box::new(e),
        other => return Ok(other?),
    };
    let dir = match download::target_dir(data_dir, downloads.fallback_dir.as_deref()) {
        Ok(dir) => dir,
        Err(source) if !downloads.offline => {
            return Err(LoadError::Download { not_found, source });
        }
        Err(_) => data_dir.to_owned(),
    };
    if dir != data_dir {
        match load_train_set(kind, &dir) {
            Err(DataError::NotFound { .. }) => {}
            other => {
                tracing::info!(
                    dataset = %kind,
                    dir = %dir.display(),
                    "dataset not in the unwritable data folder; using an earlier download"
                );
                return Ok(other?);
            }
        }
    }
    if downloads.offline {
        return Err(LoadError::Offline {
            not_found,
            hint: downloads.hint(kind, data_dir),
        });
    }
    tracing::info!(dataset = %kind, dir = %dir.display(), "dataset not found; downloading it");
    download::fetch(kind, &dir, downloads)
        .map_err(|source| LoadError::Download { not_found, source })?;
    Ok(load_train_set(kind, &dir)?)
}

/// The datasets this worker has loaded, by kind. Loading happens at most once per kind; a
/// failed load is not cached (the files may be fixed while the worker runs).
pub struct DataCache {
    data_dir: PathBuf,
    device: Device,
    downloads: Arc<Downloads>,
    loaded: Mutex<HashMap<DatasetKind, Arc<DeviceData>>>,
}

impl DataCache {
    /// An empty cache reading from `data_dir` onto `device`, downloading missing datasets as
    /// `downloads` says.
    pub fn new(data_dir: PathBuf, device: Device, downloads: Downloads) -> Self {
        Self {
            data_dir,
            device,
            downloads: Arc::new(downloads),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The dataset `kind`, loading it on first use (on a blocking thread).
    pub async fn get(&self, kind: DatasetKind) -> Result<Arc<DeviceData>, Arc<LoadError>> {
        // Held across the load on purpose: concurrent slots wait for one load (and one download)
        // instead of decoding or downloading the same files twice.
        let mut loaded = self.loaded.lock().await;
        if let Some(d) = loaded.get(&kind) {
            return Ok(Arc::clone(d));
        }
        let dir = self.data_dir.clone();
        let device = self.device;
        let downloads = Arc::clone(&self.downloads);
        let started = std::time::Instant::now();
        let data = tokio::task::spawn_blocking(move || {
            DeviceData::load_or_download(kind, &dir, &downloads, device)
        })
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
