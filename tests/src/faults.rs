//! Fault-injection tests' harness: sweeps of many short trials trained by the workers' test
//! trainer (`worker --test-trainer EPOCH`, deterministic, no data, no libtorch work), an audit of
//! the coordinator's database after the faults, and the comparison with a fault-free run.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::results::{Results, TrialExt};
use crate::{Coordinator, Process, Sweep, Worker, bin, field};

/// A grid of `trials` trials (`t_1`, `t_2`, ...) of `epochs` epochs each, checkpointed every
/// `checkpoint_every` epochs.
pub fn grid(name: &str, trials: usize, epochs: u32, checkpoint_every: u32) -> String {
    let seeds: Vec<String> = (1..=trials).map(|s| s.to_string()).collect();
    format!(
        r#"
[sweep]
name = "{name}"
seed = 7
max_attempts = 50

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "t_{{seed}}"
checkpoint_every = {checkpoint_every}

[experiment.fixed]
hidden_layers = 1
hidden_width = 8
epochs = {epochs}

[experiment.grid]
seed = [{}]
"#,
        seeds.join(", ")
    )
}

/// `worker --test-trainer EPOCH` named `name` on `url`, with `slots` slots.
pub fn test_worker_command(name: &str, url: &str, epoch: Duration, slots: u32) -> Command {
    test_worker_command_slots(name, url, epoch, &slots.to_string())
}

/// [`test_worker_command`] with `--slots` as given (`auto`).
pub fn test_worker_command_slots(name: &str, url: &str, epoch: Duration, slots: &str) -> Command {
    let mut command = Command::new(bin("worker"));
    command
        .args(["--cpu", "--coordinator", url, "--name", name])
        .args(["--test-trainer", &format!("{}ms", epoch.as_millis())])
        .args(["--slots", slots])
        .args(["--threads", "1", "--offline"]);
    command
}

impl Worker {
    /// Starts a worker training with the test trainer (see [`test_worker_command`]).
    pub fn start_test(name: &str, url: &str, epoch: Duration, slots: u32) -> Worker {
        Worker::from_command(name, test_worker_command(name, url, epoch, slots))
    }
}

impl Sweep {
    /// Starts a coordinator on this sweep listening on `listen` (`127.0.0.1:0` for a free port),
    /// with `args` added, and waits until it serves.
    pub fn start_coordinator_at(&self, listen: &str, args: &[&str]) -> Coordinator {
        let mut command = Command::new(bin("coordinator"));
        command
            .arg("--grid")
            .arg(self.grid())
            .args(["--listen", listen])
            .arg("--out")
            .arg(self.out())
            .args(args);
        Coordinator::start(command)
    }

    /// The coordinator's state database.
    pub fn database(&self) -> std::path::PathBuf {
        self.out().join("state").join("sweep.db")
    }
}

/// What the audit of a finished sweep's database found.
#[derive(Debug, Default, Clone)]
pub struct Audit {
    /// Trials recorded.
    pub trials: usize,
    /// Trials that succeeded.
    pub succeeded: usize,
    /// (trial, epoch) pairs with more than one current row: must be 0.
    pub duplicates: usize,
    /// Trials of the grid without a result: must be 0.
    pub lost: usize,
    /// Epoch rows superseded by a later attempt (trained, accepted, then trained again).
    pub superseded: usize,
    /// Leases granted beyond one per trial.
    pub extra_attempts: u32,
    /// Trials whose result came from an attempt that resumed from a checkpoint.
    pub resumed: usize,
    /// Checkpoints set aside as unusable (each in `checkpoints/set-aside/`, named by no trial).
    pub set_aside: usize,
}

/// Checks the invariants over the coordinator's database at `db` after a sweep of `trials`
/// trials of `epochs` epochs ended, and returns its figures. Panics on any violation.
///
/// - every trial of the grid is recorded exactly once, and succeeded;
/// - each has exactly one current metric per epoch 1..=epochs;
/// - the current metrics come from attempts in order: those before the successful attempt only
///   up to the checkpoint it resumed from, the successful attempt's only after it (so no write
///   of a superseded attempt past its last checkpoint was ever kept);
/// - no epoch row names an attempt that was never leased;
/// - every checkpoint set aside as unusable is in the state directory's
///   `checkpoints/set-aside/` and is no trial's checkpoint any more (never offered again), and a
///   succeeded trial names at most its latest checkpoint (kept for a grid that grows its epochs).
pub fn audit(db: &Path, trials: usize, epochs: u32) -> Audit {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()));
    let mut a = Audit::default();
    let rows: Vec<(String, String, String, u32, Option<u32>, u32)> = conn
        .prepare(
            "SELECT id, name, state, attempts, success_attempt, resumed_from FROM trials
             WHERE in_grid = 1",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect()
        })
        .expect("read trials");
    a.trials = rows.len();
    assert_eq!(a.trials, trials, "trials recorded");
    let mut current: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
    let epoch_rows: Vec<(String, u32, u32, bool)> = conn
        .prepare(
            "SELECT t.id, e.attempt, e.epoch, e.superseded
             FROM epochs e JOIN trials t ON t.num = e.trial ORDER BY t.id, e.epoch, e.attempt",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0))
            })?
            .collect()
        })
        .expect("read epochs");
    let attempts: HashMap<&str, u32> = rows.iter().map(|r| (r.0.as_str(), r.3)).collect();
    for (trial, attempt, epoch, superseded) in &epoch_rows {
        let leased = attempts.get(trial.as_str()).copied().unwrap_or(0);
        assert!(
            *attempt >= 1 && *attempt <= leased,
            "trial {trial}: epoch {epoch} from attempt {attempt}, but {leased} leases were granted"
        );
        if *superseded {
            a.superseded += 1;
        } else {
            current
                .entry(trial.clone())
                .or_default()
                .push((*epoch, *attempt));
        }
    }
    for (id, name, state, leases, success, resumed_from) in &rows {
        if state != "succeeded" {
            a.lost += 1;
            continue;
        }
        a.succeeded += 1;
        a.extra_attempts += leases - 1;
        let success = success.unwrap_or_else(|| panic!("{name}: succeeded without an attempt"));
        if *resumed_from > 0 {
            a.resumed += 1;
        }
        let list = current.remove(id).unwrap_or_default();
        let mut by_epoch: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (epoch, attempt) in list {
            by_epoch.entry(epoch).or_default().push(attempt);
        }
        a.duplicates += by_epoch.values().filter(|v| v.len() > 1).count();
        assert_eq!(
            by_epoch.keys().copied().collect::<Vec<_>>(),
            (1..=epochs).collect::<Vec<_>>(),
            "{name}: current epochs"
        );
        let mut previous = 0;
        for (epoch, attempts) in &by_epoch {
            let attempt = attempts[0];
            assert!(
                attempt >= previous,
                "{name}: epoch {epoch} from attempt {attempt} after attempt {previous}"
            );
            previous = attempt;
            if *epoch <= *resumed_from {
                assert!(
                    attempt < success,
                    "{name}: epoch {epoch} should come from the checkpoint's attempt, not {attempt}"
                );
            } else {
                assert_eq!(
                    attempt, success,
                    "{name}: epoch {epoch} after the checkpoint ({resumed_from}) from attempt {attempt}, not the successful {success}"
                );
            }
        }
    }
    assert_eq!(a.duplicates, 0, "duplicated epochs");
    assert_eq!(a.lost, 0, "trials without a result");
    a.set_aside = audit_set_aside(&conn, db);
    a
}

/// The checkpoints each trial set aside: (trial name, file, epoch, reason).
pub fn set_aside_checkpoints(db: &Path) -> Vec<(String, String, u32, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()));
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT name, set_aside FROM trials WHERE set_aside IS NOT NULL")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("read set-aside checkpoints");
    let mut out = Vec::new();
    for (name, json) in rows {
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: set_aside: {e}"));
        for entry in list {
            let text = |pointer: &str| {
                entry
                    .pointer(pointer)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_else(|| panic!("{name}: set_aside without {pointer}: {entry}"))
                    .to_owned()
            };
            let epoch = entry
                .pointer("/checkpoint/epoch")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_else(|| panic!("{name}: set_aside without an epoch: {entry}"));
            out.push((
                name.clone(),
                text("/checkpoint/file"),
                u32::try_from(epoch).unwrap_or(u32::MAX),
                text("/reason"),
            ));
        }
    }
    out
}

/// A trial's row as the state database records it: for the audits of durable state that no
/// public output shows (trials no longer in the grid, checkpoints, attempts that did not count).
/// Every read of the database's columns by the tests is in this module.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Its id.
    pub id: String,
    /// Whether the grid file still has it.
    pub in_grid: bool,
    /// Its state ("pending", "leased", "succeeded", "failed").
    pub state: String,
    /// Its final weights, relative to the output folder.
    pub weights: Option<String>,
    /// The attempt its result came from.
    pub success_attempt: Option<u32>,
    /// The epoch its current attempt resumed from (0: from the start).
    pub resumed_from: u32,
    /// Attempts that counted against `max_attempts`.
    pub counted_attempts: u32,
    /// Its latest checkpoint and the one before, as recorded (JSON).
    pub checkpoints: (Option<serde_json::Value>, Option<serde_json::Value>),
}

fn open_read_only(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()))
}

/// Every trial named `name` the database at `db` records (one in the grid, and any number the
/// grid no longer has).
pub fn recorded(db: &Path, name: &str) -> Vec<Recorded> {
    let conn = open_read_only(db);
    let json = |name: &str, j: Option<String>| {
        j.map(|j| {
            serde_json::from_str::<serde_json::Value>(&j)
                .unwrap_or_else(|e| panic!("{name}: checkpoint JSON: {e}"))
        })
    };
    conn.prepare(
        "SELECT id, in_grid, state, weights, success_attempt, resumed_from, counted_attempts,
                checkpoint, previous_checkpoint
         FROM trials WHERE name = ?1",
    )
    .and_then(|mut s| {
        s.query_map([name], |r| {
            Ok(Recorded {
                id: r.get(0)?,
                in_grid: r.get::<_, i64>(1)? != 0,
                state: r.get(2)?,
                weights: r.get(3)?,
                success_attempt: r.get(4)?,
                resumed_from: r.get(5)?,
                counted_attempts: r.get(6)?,
                checkpoints: (json(name, r.get(7)?), json(name, r.get(8)?)),
            })
        })?
        .collect()
    })
    .unwrap_or_else(|e| panic!("{}: cannot read trial {name}: {e}", db.display()))
}

/// The one trial named `name` the grid has, as recorded.
pub fn recorded_in_grid(db: &Path, name: &str) -> Recorded {
    let mut in_grid: Vec<Recorded> = recorded(db, name)
        .into_iter()
        .filter(|t| t.in_grid)
        .collect();
    assert_eq!(in_grid.len(), 1, "{name}: {in_grid:?}");
    in_grid.remove(0)
}

/// The last epoch kept of attempt `attempt` of trial `id` (0: none).
pub fn last_epoch_kept(db: &Path, id: &str, attempt: u32) -> u32 {
    open_read_only(db)
        .query_row(
            "SELECT COALESCE(MAX(e.epoch), 0) FROM epochs e JOIN trials t ON t.num = e.trial
             WHERE t.id = ?1 AND e.attempt = ?2",
            rusqlite::params![id, attempt],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{}: cannot read the epochs of {id}: {e}", db.display()))
}

/// The secret the coordinator whose database is `db` issued to `worker`: derived as it does,
/// from the key it keeps there (for a test that speaks as a worker process it cannot ask).
pub fn worker_secret(db: &Path, worker: &str) -> String {
    use hmac::Mac as _;
    let key_hex: String = open_read_only(db)
        .query_row("SELECT value FROM meta WHERE key = 'worker_key'", [], |r| {
            r.get(0)
        })
        .unwrap_or_else(|e| panic!("{}: cannot read the worker key: {e}", db.display()));
    let key: Vec<u8> = (0..key_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&key_hex[i..i + 2], 16).expect("hex"))
        .collect();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("a key");
    mac.update(worker.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Records `checkpoint` (JSON) as trial `name`'s latest: a fault only the worker's trainer can
/// tell (a file whose size and SHA-256 match the record but is not a checkpoint).
pub fn record_latest_checkpoint(db: &Path, name: &str, checkpoint: &serde_json::Value) {
    let conn = rusqlite::Connection::open(db)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()));
    conn.execute(
        "UPDATE trials SET checkpoint = ?1 WHERE name = ?2 AND in_grid = 1",
        [checkpoint.to_string(), name.to_owned()],
    )
    .unwrap_or_else(|e| panic!("{}: cannot record {name}'s checkpoint: {e}", db.display()));
}

fn audit_set_aside(conn: &rusqlite::Connection, db: &Path) -> usize {
    let checkpoints = db
        .parent()
        .expect("the state directory")
        .join("checkpoints");
    let named: Vec<(String, String, Option<String>, Option<String>)> = conn
        .prepare("SELECT name, state, checkpoint, previous_checkpoint FROM trials")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .expect("read checkpoints");
    let file = |json: &str| -> String {
        serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("file").and_then(|f| f.as_str().map(str::to_owned)))
            .unwrap_or_else(|| panic!("a checkpoint without a file: {json}"))
    };
    let live: Vec<String> = named
        .iter()
        .flat_map(|(name, state, latest, previous)| {
            // A succeeded trial keeps its latest checkpoint only (for a grid that asks for
            // more epochs later).
            assert!(
                state != "succeeded" || previous.is_none(),
                "{name} succeeded but still names its previous checkpoint"
            );
            [latest, previous].into_iter().flatten().map(|j| file(j))
        })
        .collect();
    let set_aside = set_aside_checkpoints(db);
    for (name, f, _, _) in &set_aside {
        assert!(
            !live.contains(f),
            "{name}: checkpoint {f} was set aside but is still offered"
        );
        let kept = checkpoints.join("set-aside").join(f);
        assert!(kept.is_file(), "{name}: {} is not kept", kept.display());
        assert!(
            !checkpoints.join(f).exists(),
            "{name}: {f} is still among the live checkpoints"
        );
    }
    set_aside.len()
}

/// Checks that every succeeded trial's `wall_seconds` (from its successful attempt's lease to its
/// result) covers the training that attempt reported (its epochs' seconds), whatever happened
/// to the coordinator meanwhile: an attempt's time runs from its lease, across restarts.
pub fn assert_wall_time_covers_training(db: &Path) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database");
    let rows: Vec<(String, f64, f64)> = conn
        .prepare(
            "SELECT t.name, t.wall_seconds, SUM(e.seconds) FROM trials t
             JOIN epochs e ON e.trial = t.num AND e.attempt = t.success_attempt
                 AND e.superseded = 0
             WHERE t.state = 'succeeded' AND t.in_grid = 1 GROUP BY t.num",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .expect("read wall times");
    assert!(!rows.is_empty(), "no succeeded trial");
    for (name, wall, trained) in rows {
        assert!(
            wall + 1e-3 >= trained,
            "{name}: wall_seconds {wall:.3} is less than the {trained:.3} s its attempt trained"
        );
    }
}

/// (trial id prefix, attempt) of every result a worker says the coordinator acknowledged.
pub fn acknowledged_results(logs: &[String]) -> Vec<(String, u32)> {
    logs.iter()
        .flat_map(|log| log.lines())
        .filter(|l| l.contains("completion acknowledged") && field(l, "succeeded") == Some("true"))
        .filter_map(|l| {
            Some((
                field(l, "trial")?.to_owned(),
                field(l, "attempt")?.parse().ok()?,
            ))
        })
        .collect()
}

/// Checks that every acknowledged result is the one recorded.
pub fn assert_acknowledged_present(db: &Path, acknowledged: &[(String, u32)]) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database");
    for (prefix, attempt) in acknowledged {
        let recorded: Option<u32> = conn
            .query_row(
                "SELECT success_attempt FROM trials WHERE id LIKE ?1 || '%'",
                [prefix],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("trial {prefix}: {e}"));
        assert_eq!(
            recorded,
            Some(*attempt),
            "trial {prefix}: acknowledged result of attempt {attempt}"
        );
    }
}

/// Epochs the workers trained (from their logs), whether or not the coordinator kept them.
pub fn epochs_trained(logs: &[String]) -> usize {
    logs.iter()
        .flat_map(|log| log.lines())
        .filter(|l| l.contains(" epoch ") && l.contains(": loss "))
        .count()
}

/// Asserts that two runs of the same grid got the same numbers for every trial (timings aside).
pub fn assert_same_results(got: &Results, want: &Results) {
    assert_eq!(got.trials.len(), want.trials.len());
    let want: HashMap<_, _> = want.trials.iter().map(|t| (t.id, t)).collect();
    for t in &got.trials {
        let w = want
            .get(&t.id)
            .unwrap_or_else(|| panic!("{} is not in the fault-free run", t.name));
        assert_eq!(t.curve_bits(), w.curve_bits(), "{}: learning curve", t.name);
        assert_eq!(t.test_accuracy, w.test_accuracy, "{}", t.name);
        assert_eq!(t.train_accuracy, w.train_accuracy, "{}", t.name);
        assert_eq!(t.test_confusion, w.test_confusion, "{}", t.name);
        assert_eq!(t.train_confusion, w.train_confusion, "{}", t.name);
    }
}

/// Runs `grid` without faults (one coordinator, `workers` test workers of `slots` slots);
/// returns its results and how long it took.
pub fn fault_free_run(
    grid: &str,
    workers: usize,
    slots: u32,
    epoch: Duration,
) -> (Results, Duration) {
    let sweep = Sweep::new(grid);
    let started = Instant::now();
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", crate::QUICK_LEASES);
    let mut ws: Vec<Worker> = (0..workers)
        .map(|i| Worker::start_test(&format!("ff{i}"), &c.url(), epoch, slots))
        .collect();
    c.expect_exit_code(0, Duration::from_secs(300));
    let took = started.elapsed();
    for w in &mut ws {
        w.wait_exit(Duration::from_secs(30));
    }
    (sweep.results(), took)
}

/// The stderr of every process given.
pub fn logs<'a>(processes: impl IntoIterator<Item = &'a Process>) -> Vec<String> {
    processes.into_iter().map(Process::stderr).collect()
}
