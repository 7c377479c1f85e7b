//! The coordinator's exit statuses: the one table that says how every command ends (README.md,
//! "Exit statuses", shows the same table; a test keeps the two the same), and the one mapping
//! from how a run ended, or the error it ended with, to a row of it.

use crate::{Error, Summary};

/// How a `coordinator` command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every trial succeeded; an operator command did what it was asked.
    Success,
    /// The sweep ended with trials that failed for good (listed with their reasons);
    /// `coordinator cancel` or `retry` named a trial or experiment that does not exist.
    TrialsFailed,
    /// Could not start: a bad flag, grid file, path or token file, an output folder that cannot
    /// be written, a state directory in use, an address already in use.
    CannotStart,
    /// Stopped by an error while running (the state database or the disk failed); everything
    /// acknowledged is on disk, and the same command resumes.
    StoppedByError,
    /// An operator command could not reach the coordinator, or the coordinator refused it
    /// (wrong address, token or certificate).
    Unreachable,
    /// Stopped by SIGINT or SIGTERM before the end; the same command resumes.
    Interrupted,
}

impl Exit {
    /// Every row, in the order of the table.
    pub const ALL: [Exit; 6] = [
        Exit::Success,
        Exit::TrialsFailed,
        Exit::CannotStart,
        Exit::StoppedByError,
        Exit::Unreachable,
        Exit::Interrupted,
    ];

    /// The process's exit status.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::TrialsFailed => 1,
            Exit::CannotStart => 2,
            Exit::StoppedByError => 3,
            Exit::Unreachable => 4,
            Exit::Interrupted => 130,
        }
    }

    /// What it means, as README.md's table says it.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Success => {
                "every trial succeeded (`status`, `cancel`, `retry`, `report`: done as asked)"
            }
            Exit::TrialsFailed => {
                "the sweep ended with trials failed for good, listed with their reasons \
                 (`cancel`, `retry`: a name matched nothing)"
            }
            Exit::CannotStart => {
                "could not start: a bad flag, grid file, path, token or certificate file, an \
                 output folder that cannot be written, a state directory in use, an address in use"
            }
            Exit::StoppedByError => {
                "stopped by an error while running (the state database or the disk failed; \
                 `report`: an output could not be written); rerunning resumes"
            }
            Exit::Unreachable => {
                "`status`, `cancel`, `retry`: could not reach the coordinator, or it refused the call \
                 (address, token, certificate)"
            }
            Exit::Interrupted => "stopped by SIGINT or SIGTERM before the end; rerunning resumes",
        }
    }

    /// How a sweep that returned ended: trials not ended mean it was stopped.
    pub fn of_summary(s: &Summary) -> Exit {
        if s.unfinished > 0 {
            Exit::Interrupted
        } else if s.failed.is_empty() {
            Exit::Success
        } else {
            Exit::TrialsFailed
        }
    }

    /// How a command that failed with `e` ends; `serving`: the error came after the coordinator
    /// started serving (before, nothing ran: it could not start). No wildcard arm: a new error
    /// variant decides its row here.
    pub fn of_error(e: &Error, serving: bool) -> Exit {
        let running = if serving {
            Exit::StoppedByError
        } else {
            Exit::CannotStart
        };
        match e {
            Error::Grid(_)
            | Error::OutputInUse { .. }
            | Error::Bind { .. }
            | Error::Locked { .. }
            | Error::NotWritable { .. } => Exit::CannotStart,
            Error::Io { .. }
            | Error::Store(_)
            | Error::Storage { .. }
            | Error::Transport(_)
            | Error::Http(_)
            | Error::LocalWorkers { .. } => running,
            // The sweep ended, its outputs could not all be written.
            Error::Outputs { .. } => Exit::StoppedByError,
            // Errors of single requests never end a run; if one did, the run failed.
            Error::State(_)
            | Error::Decode(_)
            | Error::ProtocolVersion(_)
            | Error::WorkerIdentity(_)
            | Error::RateLimited { .. }
            | Error::ShuttingDown
            | Error::CheckpointDamaged { .. } => Exit::StoppedByError,
            Error::Connect { .. } => Exit::Unreachable,
            // The coordinator refused what the command asked: a bad argument is the command's;
            // anything else (a token, a TLS identity, a coordinator that is stopping) is the
            // coordinator's answer.
            Error::Remote { code, .. } => match code {
                tonic::Code::InvalidArgument => Exit::CannotStart,
                _ => Exit::Unreachable,
            },
        }
    }

    /// How `coordinator report` ends when it fails with `e`: its input unusable (it could not
    /// start), or an output that could not be made.
    pub fn of_report_error(e: &crate::report::Error) -> Exit {
        use crate::report::Error;
        match e {
            Error::Read { .. } | Error::Parse { .. } | Error::Format { .. } => Exit::CannotStart,
            Error::Write { .. } | Error::Draw { .. } => Exit::StoppedByError,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README.md's table is this one, row for row.
    #[test]
    fn the_readme_shows_this_table() {
        let readme = include_str!("../../README.md");
        let rows: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| exit status |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let want: Vec<String> = Exit::ALL
            .iter()
            .map(|e| format!("| {} | {} |", e.code(), e.meaning()))
            .collect();
        assert_eq!(rows, want);
    }

    #[test]
    fn codes_are_distinct_and_the_shared_ones_are_the_workers() {
        let mut codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        codes.dedup();
        assert_eq!(codes, [0, 1, 2, 3, 4, 130]);
    }

    #[test]
    fn where_an_error_happened_decides_between_2_and_3() {
        let io = || Error::Io {
            action: "cannot write",
            path: "x".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(Exit::of_error(&io(), false), Exit::CannotStart);
        assert_eq!(Exit::of_error(&io(), true), Exit::StoppedByError);
        let bind = Error::Bind {
            addr: "127.0.0.1:1".into(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        assert_eq!(Exit::of_error(&bind, false), Exit::CannotStart);
        let refused = Error::Remote {
            code: tonic::Code::Unauthenticated,
            message: "no token".into(),
        };
        assert_eq!(Exit::of_error(&refused, false), Exit::Unreachable);
    }
}
