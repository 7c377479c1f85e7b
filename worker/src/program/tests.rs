//! The supervisor against real processes (`sh`, `python3`): environment, logs, exit statuses,
//! and stopping a program that ignores SIGTERM and forks.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sweep_common::grid::Grid;
use sweep_common::{EpochMetrics, FailureKind, TrialSpec};

use super::{Options, run};
use crate::train::{Control, Progress, TrainError};

struct Epochs(Vec<EpochMetrics>);

impl Progress for Epochs {
    fn epoch(&mut self, m: &EpochMetrics) {
        self.0.push(m.clone());
    }
    fn checkpoint(&mut self, _: u32, _: Vec<u8>) {}
}

/// The one trial of a program experiment running `argv` (TOML strings).
fn spec(argv: &str) -> TrialSpec {
    let text = format!(
        "[sweep]\nname = 's'\n[[experiment]]\nname = 'p'\ndataset = 'fashion-mnist'\nprogram = [{argv}]\nenv = {{ MY_VAR = 'mine' }}\n[experiment.fixed]\nepochs = 2\n[experiment.params]\nlr = 0.5\nopt = 'adam'\n"
    );
    Grid::parse(&text, "t.toml")
        .unwrap()
        .trials()
        .next()
        .unwrap()
        .clone()
}

fn options(dir: &Path, gpu: Option<usize>) -> Options {
    Options {
        gpu,
        grace: Duration::from_millis(300),
        log_dir: dir.to_owned(),
    }
}

fn go(
    spec: &TrialSpec,
    opts: &Options,
    control: &Control,
) -> (Result<super::Trained, TrainError>, Vec<EpochMetrics>) {
    let mut epochs = Epochs(Vec::new());
    let r = run(
        spec,
        spec.program.as_ref().unwrap(),
        opts,
        &mut epochs,
        control,
        None,
    );
    (r, epochs.0)
}

/// Waits for `path` to hold text, for at most 20 s.
fn wait_for(path: &Path) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(Instant::now() < end, "{} never written", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaped: it runs nothing).
/// Waits (up to 10 s) for process `pid` to be gone: a SIGKILL is delivered, not done, when
/// `kill` returns, and a busy machine may take a moment to end it.
fn ends(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_program_gets_a_clean_environment_its_hyperparameters_and_its_device() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("env.py");
    std::fs::write(
        &script,
        "import json, os\n\
         p = json.load(open(os.environ['SWEEP_PARAMS']))\n\
         assert p['epochs'] == 2 and p['opt'] == 'adam', p\n\
         print(json.dumps(dict(os.environ)), flush=True)\n\
         print(json.dumps({'test_accuracy': 80.0 + p['lr'], 'train_loss': 0.25}))\n",
    )
    .unwrap();
    let spec = spec(&format!("'python3', '{}'", script.display()));
    let opts = options(dir.path(), Some(1));
    let (r, epochs) = go(&spec, &opts, &Control::default());
    let trained = r.unwrap();
    assert_eq!(trained.result.last.test_accuracy, 80.5);
    assert_eq!(epochs.len(), 1);
    assert_eq!(epochs[0].train_loss, 0.25);
    assert!(trained.weights.is_empty());
    // The log holds both lines; the first is the program's environment.
    let log = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".stdout.log"))
        .unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    let env: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(env["CUDA_VISIBLE_DEVICES"], "1");
    assert_eq!(env["MY_VAR"], "mine");
    assert_eq!(env["SWEEP_TRIAL_ID"], spec.id.to_string());
    for key in env.keys() {
        let allowed = super::INHERITED.contains(&key.as_str())
            || key.starts_with("SWEEP_")
            || [
                "CUDA_VISIBLE_DEVICES",
                "MY_VAR",
                "PWD",
                "LC_CTYPE",
                "SHLVL",
                "_",
            ]
            .contains(&key.as_str());
        assert!(allowed, "{key} leaked into the program's environment");
        assert!(!key.contains("TOKEN"), "{key}");
    }
    // On the CPU, the program sees no GPU.
    let (r, _) = go(&spec, &options(dir.path(), None), &Control::default());
    assert!(r.is_ok());
}

#[test]
fn a_failing_program_fails_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec("'sh', '-c', 'echo starting >&2; echo \"Traceback: boom\" >&2; exit 3'");
    let (r, _) = go(&spec, &options(dir.path(), None), &Control::default());
    match r {
        Err(TrainError::Program { kind, message }) => {
            assert_eq!(kind, FailureKind::ProgramFailed);
            assert!(message.contains("status 3"), "{message}");
            assert!(message.contains("Traceback: boom"), "{message}");
        }
        other => panic!("{:?}", other.map(|t| t.result)),
    }
    // Killed by a signal nobody at the worker sent.
    let spec = self::spec("'sh', '-c', 'kill -SEGV $$'");
    let (r, _) = go(&spec, &options(dir.path(), None), &Control::default());
    assert!(
        matches!(&r, Err(TrainError::Program { kind: FailureKind::ProgramFailed, message }) if message.contains("SIGSEGV")),
        "{:?}",
        r.map(|t| t.result)
    );
    let spec = self::spec("'sh', '-c', 'kill -KILL $$'");
    let (r, _) = go(&spec, &options(dir.path(), None), &Control::default());
    assert!(matches!(
        r,
        Err(TrainError::Program {
            kind: FailureKind::OutOfMemory,
            ..
        })
    ));
    // A program that does not exist.
    let spec = self::spec("'/nonexistent/program'");
    let (r, _) = go(&spec, &options(dir.path(), None), &Control::default());
    assert!(matches!(
        r,
        Err(TrainError::Program {
            kind: FailureKind::ProgramFailed,
            ..
        })
    ));
}

#[test]
fn a_program_that_ignores_sigterm_and_forks_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = dir.path().join("stubborn.py");
    let code = format!(
        "import os, signal, time\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         child = os.fork()\n\
         if child == 0:\n    time.sleep(1000)\n    os._exit(0)\n\
         open('{0}.tmp', 'w').write(f'{{os.getpid()}} {{child}}\\n')\n\
         os.rename('{0}.tmp', '{0}')\n\
         time.sleep(1000)\n",
        pids.display()
    );
    std::fs::write(&script, code).unwrap();
    let spec = spec(&format!("'python3', '{}'", script.display()));
    let opts = options(dir.path(), None);
    let control = Arc::new(Control::default());
    let stopper = {
        let control = Arc::clone(&control);
        let pids = pids.clone();
        std::thread::spawn(move || {
            let text = wait_for(&pids);
            control.stop.store(true, Ordering::Relaxed);
            text
        })
    };
    let started = Instant::now();
    let (r, _) = go(&spec, &opts, &control);
    let text = stopper.join().unwrap();
    assert!(
        matches!(r, Err(TrainError::Stopped { .. })),
        "{:?}",
        r.map(|t| t.result)
    );
    for pid in text.split_whitespace() {
        assert!(ends(pid), "process {pid} survived");
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn what_a_program_leaves_running_ends_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("pid");
    let script = dir.path().join("background.sh");
    let code = format!(
        "sleep 1000 &\necho $! > {0}.tmp; mv {0}.tmp {0}\necho '{{\"test_accuracy\": 50}}'\n",
        pid.display()
    );
    std::fs::write(&script, code).unwrap();
    let spec = spec(&format!("'sh', '{}'", script.display()));
    let (r, _) = go(&spec, &options(dir.path(), None), &Control::default());
    assert_eq!(r.unwrap().result.last.test_accuracy, 50.0);
    let text = wait_for(&pid);
    assert!(ends(&text), "the background sleep survived");
}

/// What a program trial handed to the session: epochs and checkpoints.
#[derive(Default)]
struct Seen {
    epochs: Vec<EpochMetrics>,
    checkpoints: Vec<(u32, Vec<u8>)>,
}

impl Progress for Seen {
    fn epoch(&mut self, m: &EpochMetrics) {
        self.epochs.push(m.clone());
    }
    fn checkpoint(&mut self, epoch: u32, bytes: Vec<u8>) {
        self.checkpoints.push((epoch, bytes));
    }
}

/// `code` run by the project's `python3` with the client library on its path.
fn client_program(dir: &Path, code: &str) -> TrialSpec {
    let script = dir.join("client.py");
    std::fs::write(&script, code).unwrap();
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/python");
    spec(&format!(
        "'env', 'PYTHONPATH={}', 'python3', '{}'",
        library.display(),
        script.display()
    ))
}

/// The client library reports epochs with a confusion matrix and marks a checkpoint; an
/// attempt resuming from that checkpoint finds its folder and the epochs before it.
#[test]
fn the_client_reports_checkpoints_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = client_program(
        dir.path(),
        "import json, os, sweep\n\
         t = sweep.trial()\n\
         total = 0\n\
         if t.resume_dir():\n    total = json.load(open(os.path.join(t.resume_dir(), 'total')))\n\
         for epoch in range(t.resume_epoch + 1, t.epochs + 1):\n    \
             total += 10 * epoch\n    \
             confusion = [[epoch if i == j else 0 for j in range(10)] for i in range(10)]\n    \
             stop = t.report(epoch, test_accuracy=total, train_loss=0.5, confusion=confusion, f1=0.5)\n    \
             assert stop is False and t.should_stop() is False\n    \
             json.dump(total, open(os.path.join(t.checkpoint_dir(), 'total'), 'w'))\n    \
             t.checkpoint(epoch)\n    \
             if epoch == 1 and t.resume_epoch == 0:\n        raise SystemExit(0)\n",
    );
    let opts = options(dir.path(), None);
    let program = spec.program.as_ref().unwrap();
    let mut first = Seen::default();
    let r = run(&spec, program, &opts, &mut first, &Control::default(), None);
    let trained = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.epochs.len(), 1);
    assert_eq!(first.epochs[0].test_accuracy, 10.0);
    assert_eq!(trained.result.epochs, first.epochs);
    assert_eq!(trained.result.last.test_confusion.get(3, 3), 1);
    let (epoch, archive) = first.checkpoints.pop().unwrap();
    assert_eq!(epoch, 1);

    let mut second = Seen::default();
    let resume = super::Resume {
        epoch: 1,
        archive: &archive,
    };
    let r = run(
        &spec,
        program,
        &opts,
        &mut second,
        &Control::default(),
        Some(resume),
    );
    let trained = r.unwrap_or_else(|e| panic!("{e}"));
    // Only epoch 2 is reported; the result holds epoch 1 from the checkpoint too.
    assert_eq!(second.epochs.len(), 1);
    assert_eq!(second.epochs[0].test_accuracy, 30.0, "10 + 20: resumed");
    let curve: Vec<f64> = trained
        .result
        .epochs
        .iter()
        .map(|m| m.test_accuracy)
        .collect();
    assert_eq!(curve, [10.0, 30.0]);
    assert_eq!(trained.result.last.test_accuracy, 30.0);
    assert_eq!(trained.result.last.test_confusion.get(3, 3), 2);
}

/// A checkpoint that is not a program's, or does not hold its epochs, cannot be resumed from.
#[test]
fn a_checkpoint_that_is_not_a_programs_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let spec = client_program(dir.path(), "pass\n");
    let program = spec.program.as_ref().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let no_epochs = super::pack::pack(empty.path(), b"{\"epochs\": []}").unwrap();
    for archive in [&b"not a tar archive at all"[..], &no_epochs] {
        let resume = super::Resume { epoch: 1, archive };
        let opts = options(dir.path(), None);
        let r = run(
            &spec,
            program,
            &opts,
            &mut Seen::default(),
            &Control::default(),
            Some(resume),
        );
        assert!(
            matches!(r, Err(TrainError::Resume(_))),
            "{:?}",
            r.map(|t| t.result)
        );
    }
}

/// What the program sends that the worker refuses fails the trial with the reason, and stops a
/// program that carries on regardless.
#[test]
fn a_refused_request_fails_the_trial_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Garbage on the socket, then the program waits to be stopped.
    let spec = client_program(
        dir.path(),
        "import os, socket, time\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.connect(os.environ['SWEEP_SOCKET'])\n\
         s.sendall(b'{\"op\": \"report\", \"epoch\": 1, \"test_accuracy\": \"high\"}\\n')\n\
         print(s.makefile().readline(), flush=True)\n\
         time.sleep(1000)\n",
    );
    let (r, epochs) = go(&spec, &options(dir.path(), None), &Control::default());
    match r {
        Err(TrainError::Program { kind, message }) => {
            assert_eq!(kind, FailureKind::ProgramFailed);
            assert!(
                message.contains("the program's client sent a request that is not one")
                    && message.contains("invalid type"),
                "{message}"
            );
        }
        other => panic!("{:?}", other.map(|t| t.result)),
    }
    assert!(epochs.is_empty());
    // Through the library: an epoch out of order raises in the program, and the trial's
    // failure says why.
    let spec = client_program(
        dir.path(),
        "import sweep\n\
         t = sweep.trial()\n\
         t.report(1, test_accuracy=50.0)\n\
         t.report(3, test_accuracy=50.0)\n",
    );
    let (r, epochs) = go(&spec, &options(dir.path(), None), &Control::default());
    match r {
        Err(TrainError::Program { kind, message }) => {
            assert_eq!(kind, FailureKind::ProgramFailed);
            assert!(
                message.contains("report of epoch 3: the next epoch is 2"),
                "{message}"
            );
        }
        other => panic!("{:?}", other.map(|t| t.result)),
    }
    assert_eq!(epochs.len(), 1);
}

#[test]
fn a_final_json_line_carries_its_other_numbers_as_scalars() {
    let m = super::final_metrics(Some(
        r#"{"test_accuracy": 81.0, "train_loss": 0.4, "f1": 0.7, "bad name": 1, "note": "x"}"#,
    ))
    .unwrap();
    assert_eq!(m.test_accuracy, 81.0);
    let scalars: Vec<(&str, f64)> = m.scalars.iter().collect();
    assert_eq!(
        scalars,
        [("f1", 0.7)],
        "the built-in fields, a bad name, text: not scalars"
    );
    assert!(super::final_metrics(Some(r#"{"f1": 0.7}"#)).is_none());
}
