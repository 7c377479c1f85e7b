//! The worker's exit codes: the one table (README.md, "Exit codes", says the same), and the one
//! mapping from how a run ended to a code.

use std::process::ExitCode;

/// How a worker process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the coordinator said the sweep is finished.
    Finished,
    /// 1: an unexpected error inside the worker (the async runtime cannot start, a task
    /// crashed): a bug, it says what.
    Internal,
    /// 2: a bad flag or configuration (clap's own errors exit 2 too).
    Usage,
    /// 3: this worker cannot run trials (its data folder, its device, its disk): it stopped
    /// taking them and said why; other workers run them.
    CannotRun,
    /// 4: it could not reach the coordinator, or the coordinator refused it (wrong address or
    /// port, the web view's port, wrong token or TLS settings, patience ran out).
    Coordinator,
    /// 130: stopped by SIGINT or SIGTERM before the sweep ended (it drained: its trials were
    /// checkpointed and given back).
    Stopped,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Finished => 0,
            Exit::Internal => 1,
            Exit::Usage => 2,
            Exit::CannotRun => 3,
            Exit::Coordinator => 4,
            Exit::Stopped => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

impl crate::Error {
    /// The exit code this error ends the worker with.
    pub fn exit(&self) -> Exit {
        use crate::Error;
        match self {
            Error::Address { .. } => Exit::Usage,
            Error::Device(_) | Error::CannotRun(_) => Exit::CannotRun,
            Error::Unreachable { .. } | Error::Refused(_) | Error::NotGrpc { .. } => {
                Exit::Coordinator
            }
            Error::Internal(_) => Exit::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn each_error_has_its_code() {
        let cases = [
            (
                Error::Address {
                    addr: "x".into(),
                    message: "bad".into(),
                },
                2,
            ),
            (Error::CannotRun("no data".into()), 3),
            (Error::Refused("wrong token".into()), 4),
            (
                Error::NotGrpc {
                    addr: "http://127.0.0.1:8080".into(),
                    detail: "HTTP/1.1".into(),
                },
                4,
            ),
            (Error::Internal("a task crashed".into()), 1),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit().code(), code, "{e}");
        }
        assert_eq!(Exit::Finished.code(), 0);
        assert_eq!(Exit::Stopped.code(), 130);
    }
}
