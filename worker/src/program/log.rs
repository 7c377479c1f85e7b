//! A program's output stream captured to a bounded log file that keeps the tail: lines go to the
//! file until it holds half the limit, then it becomes `<file>.old` (replacing the one before)
//! and a new file starts. When the stream ends, the two halves are joined into the file, after a
//! first line that says how many bytes before them were not kept; so the log never exceeds the
//! limit (plus that line) and always ends with the program's last output.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use sweep_common::TrialSpec;
use sweep_common::trial::{LogStream, file_stem};
use tracing::warn;

/// Most bytes kept of each of a program's stdout and stderr logs (the last ones).
pub const LOG_LIMIT: u64 = 16 * 1024 * 1024;
/// Longest line kept for the tail and for the final JSON line, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// Where the log of `stream` of trial `spec` goes in `dir`: the trial's name and short id, so
/// two trials, or two attempts on one worker one after the other, never mix their logs.
pub fn path(dir: &Path, spec: &TrialSpec, stream: LogStream) -> PathBuf {
    dir.join(format!(
        "{}.{}.{}.log",
        file_stem(&spec.name),
        spec.id.short(),
        stream.name()
    ))
}

/// The file a log's older half is kept in while the stream runs.
fn older(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".old");
    PathBuf::from(name)
}

/// The log being written: the current half, its size, and the bytes no longer kept.
struct Halves {
    log: PathBuf,
    file: Option<File>,
    written: u64,
    rotated: bool,
    dropped: u64,
    limit: u64,
}

impl Halves {
    fn new(log: &Path, limit: u64) -> Self {
        let file = File::create(log)
            .map_err(|e| warn!(log = %log.display(), error = %e, "cannot write the program's log"))
            .ok();
        Halves {
            log: log.to_owned(),
            file,
            written: 0,
            rotated: false,
            dropped: 0,
            limit,
        }
    }

    fn write(&mut self, line: &[u8]) {
        let n = line.len() as u64;
        if self.written + n > self.limit / 2 && self.written > 0 {
            self.rotate();
        }
        if let Some(f) = self.file.as_mut() {
            if f.write_all(line).is_err() {
                self.file = None;
            }
        }
        self.written += n;
    }

    /// The current half becomes the older one; the older one's bytes are no longer kept.
    fn rotate(&mut self) {
        let old = older(&self.log);
        if self.rotated {
            self.dropped += std::fs::metadata(&old).map_or(0, |m| m.len());
        }
        self.file = std::fs::rename(&self.log, &old)
            .and_then(|()| File::create(&self.log))
            .ok();
        self.rotated = true;
        self.written = 0;
    }

    /// Joins the halves into the log, after a line that says what was not kept.
    fn finish(self) -> std::io::Result<()> {
        drop(self.file);
        if !self.rotated {
            return Ok(());
        }
        let old = older(&self.log);
        let joined = {
            let mut name = self.log.as_os_str().to_owned();
            name.push(".joined");
            PathBuf::from(name)
        };
        let mut out = File::create(&joined)?;
        writeln!(
            out,
            "[sweep: this log keeps the last {} bytes; the first {} bytes are not kept]",
            self.limit, self.dropped
        )?;
        std::io::copy(&mut File::open(&old)?, &mut out)?;
        std::io::copy(&mut File::open(&self.log)?, &mut out)?;
        std::fs::rename(&joined, &self.log)?;
        std::fs::remove_file(&old)
    }
}

/// Copies a pipe into `log` (at most `limit` bytes, the last ones), on a thread; answers the
/// last `keep` non-empty lines (each cut to [`MAX_LINE`]).
pub fn capture(
    pipe: impl Read + Send + 'static,
    log: &Path,
    limit: u64,
    keep: usize,
) -> JoinHandle<VecDeque<String>> {
    let mut halves = Halves::new(log, limit);
    std::thread::spawn(move || {
        let mut tail = VecDeque::with_capacity(keep + 1);
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            // A line longer than MAX_LINE is read in pieces: memory stays bounded.
            match (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    halves.write(&line);
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    if !text.is_empty() {
                        tail.push_back(text);
                        if tail.len() > keep {
                            tail.pop_front();
                        }
                    }
                }
            }
        }
        let log = halves.log.clone();
        if let Err(e) = halves.finish() {
            warn!(log = %log.display(), error = %e, "cannot join the halves of the program's log");
        }
        tail
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_keeps_its_tail_within_the_limit_and_says_so() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let log = dir.path().join("x.log");
        let text: String = (0..1000).map(|i| format!("line {i:04}\n")).collect();
        let tail = capture(
            std::io::Cursor::new(text.clone().into_bytes()),
            &log,
            200,
            2,
        )
        .join()
        .expect("the capture");
        assert_eq!(tail, ["line 0998", "line 0999"]);
        let kept = std::fs::read_to_string(&log).expect("the log");
        let (first, rest) = kept.split_once('\n').expect("a first line");
        assert!(
            first.starts_with("[sweep: this log keeps the last 200 bytes"),
            "{first}"
        );
        assert!(rest.len() <= 200 && text.ends_with(rest), "{rest}");
        let dropped: usize = first
            .split("the first ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("the count");
        assert_eq!(dropped + rest.len(), text.len());
        assert!(!older(&log).exists());
    }

    #[test]
    fn a_short_log_is_kept_whole() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let log = dir.path().join("x.log");
        capture(std::io::Cursor::new(b"a\nb\n".to_vec()), &log, 200, 5)
            .join()
            .expect("the capture");
        assert_eq!(std::fs::read_to_string(&log).expect("the log"), "a\nb\n");
    }
}
