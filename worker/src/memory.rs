//! Device memory: what the worker reports to the coordinator with its heartbeats, and what
//! `--slots auto` sizes the number of concurrent trials from.
//!
//! On a GPU the figures are the device's (from `nvidia-smi`: libtorch's C API does not expose
//! them), so they include other processes on the same GPU. On the CPU, "used" is this process's
//! resident memory and "free" the kernel's `MemAvailable`.

use std::time::Duration;

use tch::Device;
use tokio::sync::watch;

/// One reading, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// In use (by this process on the CPU; on the whole device for a GPU).
    pub used: u64,
    /// Still available.
    pub free: u64,
    /// The device's total.
    pub total: u64,
}

/// How often the shared reading is refreshed.
const REFRESH: Duration = Duration::from_secs(2);
/// Most trials `--slots auto` runs at once on a GPU.
pub const MAX_AUTO_SLOTS: u32 = 16;
/// Memory kept free by `--slots auto`, as a fraction of what one trial needs, so that one trial's
/// peak above its measured use does not run the device out of memory.
const HEADROOM: f64 = 0.25;

/// Reads the device's memory now (blocking: it may run `nvidia-smi`). `None` when unknown.
pub fn read(device: Device) -> Option<Reading> {
    match device {
        Device::Cuda(index) => read_gpu(index),
        _ => read_cpu(),
    }
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

fn read_cpu() -> Option<Reading> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    Some(Reading {
        used: kib_field(&status, "VmRSS:")?,
        free: kib_field(&meminfo, "MemAvailable:")?,
        total: kib_field(&meminfo, "MemTotal:")?,
    })
}

fn read_gpu(index: usize) -> Option<Reading> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.used,memory.free,memory.total",
            "--format=csv,noheader,nounits",
            &format!("--id={index}"),
        ])
        .output()
        .ok()?;
    parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout))
}

/// `used, free, total` in MiB, as `nvidia-smi --format=csv,noheader,nounits` prints them.
fn parse_nvidia_smi(text: &str) -> Option<Reading> {
    let mut fields = text.trim().split(',').map(|f| f.trim().parse::<u64>().ok());
    let mib = 1024 * 1024;
    Some(Reading {
        used: fields.next()?? * mib,
        free: fields.next()?? * mib,
        total: fields.next()?? * mib,
    })
}

/// A reading refreshed in the background every few seconds (`None` until the first one, or
/// when the device does not say).
pub fn monitor(device: Device) -> watch::Receiver<Option<Reading>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            let reading = tokio::task::spawn_blocking(move || read(device))
                .await
                .ok()
                .flatten();
            if tx.send(reading).is_err() {
                return;
            }
            tokio::time::sleep(REFRESH).await;
        }
    });
    rx
}

/// How many trials fit at once: one already runs and uses `per_trial`, `free` is what is left.
/// At least 1, at most `cap`.
pub fn auto_slots(per_trial: u64, free: u64, cap: u32) -> u32 {
    let per_trial = per_trial.max(1) as f64;
    let more = (free as f64 / (per_trial * (1.0 + HEADROOM))).floor();
    // The float is finite and non-negative; the cast saturates.
    let k = 1 + more.min(f64::from(cap)) as u32;
    k.clamp(1, cap.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_slots_fit_the_free_memory_with_headroom() {
        let gib = 1 << 30;
        // 1 GiB per trial, 10 GiB free: 8 more fit with 25 % headroom, 9 in all.
        assert_eq!(auto_slots(gib, 10 * gib, 16), 9);
        assert_eq!(auto_slots(gib, 0, 16), 1);
        assert_eq!(auto_slots(gib, 1000 * gib, 16), 16);
        assert_eq!(auto_slots(0, gib, 4), 4);
        assert_eq!(auto_slots(gib, 10 * gib, 0), 1);
    }

    #[test]
    fn nvidia_smi_lines_parse() {
        assert_eq!(
            parse_nvidia_smi("1024, 80000, 81024\n"),
            Some(Reading {
                used: 1024 << 20,
                free: 80000 << 20,
                total: 81024 << 20
            })
        );
        assert_eq!(parse_nvidia_smi("[N/A], 1, 2"), None);
        assert_eq!(parse_nvidia_smi(""), None);
    }

    #[test]
    fn the_cpu_reading_is_sane() {
        let r = read(Device::Cpu).expect("a reading on Linux");
        assert!(r.used > 0 && r.total > 0 && r.free <= r.total, "{r:?}");
    }
}
