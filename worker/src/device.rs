//! The training device: CPU or one CUDA GPU, checked loudly, plus the process-wide settings
//! that make libtorch fast on it (threads, malloc thresholds).

use tch::Device;

/// The device a worker was asked to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

/// What the worker reports about its device.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// The tch device.
    pub device: Device,
    /// GPU or CPU model name.
    pub name: String,
    /// Total memory in bytes (0 when unknown).
    pub memory_bytes: u64,
}

/// Why the device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// CUDA is not usable by this binary.
    #[error(
        "--gpu {index} was asked for but CUDA is not available to this worker (libtorch sees {count} CUDA devices); \
         check the NVIDIA driver (nvidia-smi) and that libtorch_cuda.so is found, or run with --cpu"
    )]
    CudaUnavailable {
        /// The index asked for.
        index: usize,
        /// Devices libtorch sees.
        count: usize,
    },
}

/// Checks the device and describes it. Never falls back to the CPU when a GPU was asked for.
pub fn open(choice: DeviceChoice) -> Result<DeviceInfo, DeviceError> {
    match choice {
        DeviceChoice::Cpu => Ok(DeviceInfo {
            device: Device::Cpu,
            name: cpu_name(),
            memory_bytes: total_memory(),
        }),
        DeviceChoice::Cuda(index) => {
            let count = if tch::Cuda::is_available() {
                usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
            } else {
                0
            };
            if index >= count {
                return Err(DeviceError::CudaUnavailable { index, count });
            }
            let (name, memory_bytes) = gpu_name_and_memory(index);
            Ok(DeviceInfo {
                device: Device::Cuda(index),
                name,
                memory_bytes,
            })
        }
    }
}

/// GPU name and memory from `nvidia-smi` (libtorch's C API does not expose them).
fn gpu_name_and_memory(index: usize) -> (String, u64) {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,memory.total",
            "--format=csv,noheader,nounits",
            &format!("--id={index}"),
        ])
        .output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some((name, mib)) = text.trim().split_once(',') {
            let mib: u64 = mib.trim().parse().unwrap_or(0);
            return (name.trim().to_owned(), mib * 1024 * 1024);
        }
    }
    (format!("CUDA device {index}"), 0)
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "cpu".to_owned())
}

fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<u64>().ok())
                })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Raises glibc malloc's mmap and trim thresholds, so that libtorch's per-step tensor buffers are
/// reused from the heap instead of being mapped and unmapped every step (measured on the lab's
/// Fashion-MNIST model: 0.60 -> 0.33 s per epoch on a 2-core CPU). Call once, before training.
#[allow(unsafe_code)]
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const THRESHOLD: libc::c_int = 256 * 1024 * 1024;
        // SAFETY: mallopt only changes allocator parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
        }
    }
}

/// Keeps every thread on glibc's main arena, for training on the CPU: trials train on threads
/// of their own, and a thread's own arena is made of 64 MiB heaps, so that any larger buffer (a
/// wide CNN's activations) was a fresh mapping every step, whatever [`tune_malloc`] sets (a
/// 64-128 channel CNN on CIFAR-sized images: 637 000 page faults for 18 steps and an
/// evaluation; 163 000 on the main arena, most of them loading the data). Small blocks still
/// come from each thread's cache without a lock. Call first thing in `main`, before any other
/// thread starts: a thread that has allocated keeps its arena.
#[allow(unsafe_code)]
pub fn single_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Whether trials on a GPU get a CUDA stream each (on unless `--no-cuda-streams`).
static CUDA_STREAMS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turns per-trial CUDA streams on or off for this process (the worker's `--no-cuda-streams`,
/// there to measure what they bring).
pub fn set_cuda_streams(on: bool) {
    CUDA_STREAMS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Gives the calling thread a CUDA stream of its own from libtorch's pool when `device` is a
/// GPU, so that the trials one worker trains at once on it (`--slots K`) do not all queue on the
/// default stream. Returns whether the thread now has one: false on the CPU, when turned off,
/// when the worker was built without libtorch's CUDA headers, or when CUDA refused (the thread
/// then keeps the default stream, which is correct, only more serialised).
#[allow(unsafe_code)]
pub fn use_own_cuda_stream(device: Device) -> bool {
    let Device::Cuda(index) = device else {
        return false;
    };
    if !CUDA_STREAMS.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    #[cfg(sweep_cuda_streams)]
    {
        unsafe extern "C" {
            fn sweep_use_pool_stream(device: libc::c_int) -> libc::c_int;
        }
        let Ok(index) = libc::c_int::try_from(index) else {
            return false;
        };
        // SAFETY: the function (csrc/cuda_stream.cpp) takes a device index, catches every C++
        // exception, and only sets the calling thread's current CUDA stream.
        unsafe { sweep_use_pool_stream(index) == 0 }
    }
    #[cfg(not(sweep_cuda_streams))]
    {
        let _ = index;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU never gets a stream; a GPU gets one exactly when CUDA is there and the shim was
    /// built (on a machine without a GPU this calls into the shim, which must refuse cleanly).
    #[test]
    fn cuda_stream_only_where_cuda_is() {
        assert!(!use_own_cuda_stream(Device::Cpu));
        let expected = cfg!(sweep_cuda_streams) && tch::Cuda::is_available();
        assert_eq!(use_own_cuda_stream(Device::Cuda(0)), expected);
        set_cuda_streams(false);
        assert!(!use_own_cuda_stream(Device::Cuda(0)));
        set_cuda_streams(true);
    }
}
