//! Whose fault a failed trial is: every error the worker meets running a trial, as the
//! [`FailureKind`] it reports (which decides whether the trial is tried again, and where).
//!
//! libtorch reports its errors as text only (`tch::TchError` carries C++'s message), so
//! [`torch`] is the one place that reads that text; everything else matches on its [`Torch`].

use sweep_common::FailureKind;

use crate::data_cache::LoadError;
use crate::train::TrainError;

/// What a libtorch error says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Torch {
    /// The device (or, on the CPU, the host) ran out of memory: not the trial's fault; it is
    /// leased again, and this worker trains fewer trials at once.
    OutOfMemory,
    /// The device failed: not the trial's fault either; it goes to another worker, and this one
    /// takes no more trials.
    Device,
    /// Anything else.
    Other,
}

/// libtorch's words for running out of memory: its CUDA caching allocator ("CUDA out of
/// memory. Tried to allocate ..."), the CUDA runtime ("CUDA error: out of memory"), the CPU
/// allocator ("DefaultCPUAllocator: can't allocate memory"), and the CUDA libraries that could
/// not allocate their workspace.
const OUT_OF_MEMORY: [&str; 5] = [
    "out of memory",
    "can't allocate memory",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUSOLVER_STATUS_ALLOC_FAILED",
];

/// libtorch's words for a failed device (once running out of memory is ruled out).
const DEVICE: [&str; 5] = [
    "CUDA error",
    "CUBLAS_STATUS",
    "CUDNN_STATUS",
    "cudaError",
    "NCCL error",
];

/// What `e` says went wrong.
pub fn torch(e: &tch::TchError) -> Torch {
    torch_text(&e.to_string())
}

/// What the text of a libtorch error says went wrong.
fn torch_text(message: &str) -> Torch {
    if OUT_OF_MEMORY.iter().any(|m| message.contains(m)) {
        Torch::OutOfMemory
    } else if DEVICE.iter().any(|m| message.contains(m)) {
        Torch::Device
    } else {
        Torch::Other
    }
}

impl From<Torch> for FailureKind {
    fn from(t: Torch) -> Self {
        match t {
            Torch::OutOfMemory => FailureKind::OutOfMemory,
            Torch::Device => FailureKind::Device,
            Torch::Other => FailureKind::Internal,
        }
    }
}

/// Whose a failure to make the dataset resident is: a missing or corrupt file, or a failed
/// download, is this worker's data folder's (other workers may have it); libtorch's as
/// [`torch`] says.
pub fn load(e: &LoadError) -> FailureKind {
    match e {
        LoadError::Data(_) | LoadError::Offline { .. } | LoadError::Download { .. } => {
            FailureKind::Data
        }
        LoadError::Torch(t) => torch(t).into(),
        LoadError::Join(_) => FailureKind::Internal,
    }
}

/// Whose a training failure is, and its message.
pub fn train(e: &TrainError) -> (FailureKind, String) {
    let kind = match e {
        TrainError::Stopped { epoch } => {
            let message = format!("worker shut down during epoch {epoch}");
            return (FailureKind::WorkerShutdown, message);
        }
        TrainError::Drained { epoch } => {
            let message = format!("worker shut down after epoch {epoch} (checkpointed)");
            return (FailureKind::WorkerShutdown, message);
        }
        TrainError::NonFiniteLoss { .. } => FailureKind::NonFiniteLoss,
        TrainError::Invalid(_) => FailureKind::InvalidSpec,
        TrainError::Resume(_) => FailureKind::CheckpointUnusable,
        TrainError::Checkpoint(_) => FailureKind::Internal,
        TrainError::Torch(t) => torch(t).into(),
        TrainError::Program { kind, .. } => *kind,
    };
    (kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use sweep_common::DatasetKind;
    use sweep_data::DataError;

    use super::*;

    /// What libtorch 2.11 says when the CUDA caching allocator cannot allocate (its format, from
    /// c10/cuda/CUDACachingAllocator.cpp, with an H200's numbers).
    const CUDA_CACHING_OOM: &str = "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a \
        total capacity of 139.72 GiB of which 1.20 GiB is free. Including non-PyTorch memory, \
        this process has 138.50 GiB memory in use. Of the allocated memory 137.90 GiB is \
        allocated by PyTorch, and 12.00 MiB is reserved by PyTorch but unallocated. If reserved \
        but unallocated memory is large try setting \
        PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.";

    #[test]
    fn libtorch_errors_are_read_once_and_rightly() {
        let oom = [
            CUDA_CACHING_OOM,
            "CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported",
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate \
             memory: you tried to allocate 400000000000000 bytes. Error code 12 (Cannot \
             allocate memory)",
            "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
            "cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
        ];
        for message in oom {
            assert_eq!(torch_text(message), Torch::OutOfMemory, "{message}");
        }
        let device = [
            "CUDA error: an illegal memory access was encountered\nCompile with \
             `TORCH_USE_CUDA_DSA` to enable device-side assertions.",
            "CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm( handle, opa, \
             opb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc)`",
            "cuDNN error: CUDNN_STATUS_EXECUTION_FAILED",
            "CUDA error: unspecified launch failure",
            "NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled cuda error",
        ];
        for message in device {
            assert_eq!(torch_text(message), Torch::Device, "{message}");
        }
        let other = [
            "shape '[2, 3]' is invalid for input of size 7",
            "mat1 and mat2 shapes cannot be multiplied (64x784 and 3072x128)",
        ];
        for message in other {
            assert_eq!(torch_text(message), Torch::Other, "{message}");
        }
    }

    #[test]
    fn a_real_allocation_that_cannot_fit_is_out_of_memory() {
        // More than any address space holds: libtorch's CPU allocator refuses it at once.
        let e = tch::Tensor::f_empty([1i64 << 50], (tch::Kind::Float, tch::Device::Cpu))
            .expect_err("a 4 PiB tensor");
        assert_eq!(torch(&e), Torch::OutOfMemory, "{e}");
        let kind = train(&TrainError::Torch(e)).0;
        assert_eq!(kind, FailureKind::OutOfMemory);
        // A real libtorch error that is the trial's shape, not the memory.
        let e = tch::Tensor::zeros([7], (tch::Kind::Float, tch::Device::Cpu))
            .f_view([2, 3])
            .expect_err("7 elements are not 2 x 3");
        assert_eq!(torch(&e), Torch::Other, "{e}");
    }

    #[test]
    fn each_failure_goes_to_whom_it_belongs() {
        // A dataset this worker cannot find or read is its own data folder's problem.
        let not_found = || DataError::NotFound {
            dataset: DatasetKind::Cifar10,
            tried: vec!["/data/cifar-10-batches-bin".into()],
            expected: "the batches".into(),
        };
        assert_eq!(load(&LoadError::Data(not_found())), FailureKind::Data);
        let offline = LoadError::Offline {
            not_found: Box::new(not_found()),
            hint: "put it there".into(),
        };
        assert_eq!(load(&offline), FailureKind::Data);
        assert_eq!(
            load(&LoadError::Join("panicked".into())),
            FailureKind::Internal
        );
        let cases = [
            (
                TrainError::Stopped { epoch: 3 },
                FailureKind::WorkerShutdown,
            ),
            (
                TrainError::Drained { epoch: 3 },
                FailureKind::WorkerShutdown,
            ),
            (
                TrainError::NonFiniteLoss {
                    epoch: 2,
                    loss: f64::NAN,
                },
                FailureKind::NonFiniteLoss,
            ),
            (TrainError::Invalid("x".into()), FailureKind::InvalidSpec),
            (
                TrainError::Resume("x".into()),
                FailureKind::CheckpointUnusable,
            ),
            (TrainError::Checkpoint("x".into()), FailureKind::Internal),
        ];
        for (e, kind) in cases {
            assert_eq!(train(&e).0, kind, "{e}");
        }
        assert_eq!(
            train(&TrainError::Drained { epoch: 3 }).1,
            "worker shut down after epoch 3 (checkpointed)"
        );
    }
}
