//! Early stopping end to end (issue 17), with the workers' test trainer: ASHA over
//! configurations of two seeds each stops whole configurations; the coordinator SIGKILLed at
//! random points changes no decision (the results equal an uninterrupted run's); every curve is
//! the prefix of the same trial's curve in a run without a stopping rule; and `coordinator
//! promote` resumes a stopped configuration from its checkpoints.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sweep_common::results::{Results, Status};
use sweep_common::rng::SplitMix64;
use sweep_tests::results::Point;
use sweep_tests::{Coordinator, Sweep, TrialExt as _, Worker, text};

const EPOCH: Duration = Duration::from_millis(40);
const ARGS: &[&str] = sweep_tests::QUICK_LEASES;

/// Twelve widths x two seeds, nine epochs, checkpointed every epoch; `stopping` is the
/// `[experiment.stopping]` table's body (empty: no rule).
fn grid(name: &str, stopping: &str) -> String {
    let table = if stopping.is_empty() {
        String::new()
    } else {
        format!("[experiment.stopping]\n{stopping}\n")
    };
    format!(
        r#"
[sweep]
name = "{name}"
seed = 7

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "w{{hidden_width}}_s{{seed}}"
checkpoint_every = 1
repeats = 2

[experiment.fixed]
hidden_layers = 1
epochs = 9

[experiment.grid]
hidden_width = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]

{table}"#
    )
}

const ASHA: &str = "rule = \"asha\"\nmin_epochs = 1\nreduction = 3";

fn results(sweep: &Sweep) -> Results<'static> {
    let path = sweep.out().join("results.json");
    let text = std::fs::read_to_string(&path).expect("results.json");
    serde_json::from_str(&text).expect("results.json parses")
}

type Outcome = BTreeMap<String, (Status, Option<u32>, Vec<Point>)>;

fn outcome(r: &Results<'_>) -> Outcome {
    r.trials
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                (
                    t.status,
                    t.stopped.as_ref().map(|s| s.epoch),
                    t.curve_bits(),
                ),
            )
        })
        .collect()
}

/// Runs `grid` to the end with one worker of one slot (so reports arrive in one order).
fn run(grid: &str) -> Outcome {
    let sweep = Sweep::new(grid);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let mut w = Worker::start_test("w", &c.url(), EPOCH, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));
    outcome(&results(&sweep))
}

/// The trials the coordinator's status lists as stopped, by name.
fn stopped_now(c: &Coordinator) -> Vec<String> {
    let out = c.operator(&["status", "--json", "--state", "stopped"]);
    if !out.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["trials"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn asha_decisions_survive_coordinator_kills_and_curves_are_prefixes() {
    let full = run(&grid("stopping-full", ""));
    let asha = run(&grid("stopping-asha", ASHA));
    assert_eq!(full.len(), 24);
    assert_eq!(asha.len(), 24);

    // Every curve is the uninterrupted one's (seeds stopping together: the state machine's tests).
    let mut trained = 0;
    for (name, (status, stopped_at, curve)) in &asha {
        let (_, _, whole) = &full[name];
        assert_eq!(curve[..], whole[..curve.len()], "{name}: not a prefix");
        trained += curve.len();
        match status {
            Status::Stopped => {
                let at = stopped_at.expect("a stopped trial says where");
                assert!(curve.len() as u32 >= at, "{name}: stopped at {at}");
            }
            Status::Succeeded => assert_eq!(curve.len(), 9, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let stopped = asha.values().filter(|o| o.0 == Status::Stopped).count();
    // One slot trains a configuration's first seed past the rungs before its second arrives, so
    // mostly the second seeds stop. The test trainer's configurations differ only by noise, and
    // with two seeds a configuration within one standard error of a rung's cutoff (its better
    // seed reaches it) goes on, so fewer stop than a third of each rung: at least two
    // configurations.
    assert!(stopped >= 4, "ASHA with reduction 3 stops some: {stopped}");
    // Noise-only configurations: the seeds tell few apart, so most train on (172 of 216
    // epochs when this was written).
    assert!(
        trained < 24 * 9 * 7 / 8,
        "trained {trained} of {} epochs",
        24 * 9
    );

    // The same sweep with the coordinator SIGKILLed three times: the same decisions.
    let sweep = Sweep::new(&grid("stopping-asha", ASHA));
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let listen = c.addr().to_string();
    let mut w = Worker::start_test("w", &c.url(), EPOCH, 1);
    let mut rng = SplitMix64::new(17);
    let mut dead = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300 + rng.next_u64() % 900));
        assert!(c.try_status().is_none(), "the sweep ended before the kills");
        c.kill();
        dead.push(c);
        c = sweep.start_coordinator_at(&listen, ARGS);
    }
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));
    assert_eq!(
        outcome(&results(&sweep)),
        asha,
        "decisions changed by the kills"
    );
}

#[test]
fn promote_resumes_a_stopped_configuration_from_its_checkpoints() {
    let full = run(&grid("promote-full", ""));
    let sweep = Sweep::new(&grid("promote", ASHA));
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let mut w = Worker::start_test("w", &c.url(), EPOCH * 3, 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (promoted, out) = loop {
        assert!(Instant::now() < deadline, "no trial was stopped");
        let stopped = stopped_now(&c);
        if let Some(name) = stopped.first() {
            let out = c.operator(&["promote", "--trial", name]);
            if out.status.success() {
                break (name.clone(), out);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // With one slot a configuration's first seed trains past the rung while its second is
    // queued (nothing pauses it there yet), so one or both seeds were stopped.
    let said = text(&out.stdout);
    assert!(
        said == "promoted 1 stopped trials" || said == "promoted 2 stopped trials",
        "{said}"
    );
    let out = c.operator(&["promote", "--trial", "nope"]);
    assert!(!out.status.success(), "an unknown name is an error");
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));
    let end = outcome(&results(&sweep));
    let (status, stopped_at, curve) = &end[&promoted];
    // It trained past the rung it was stopped at (to a higher rung or to the end), resuming
    // from its checkpoint: its curve is the uninterrupted run's.
    assert!(
        *status == Status::Succeeded || stopped_at.is_some_and(|at| at > 1),
        "{promoted}: {status:?} at {stopped_at:?}"
    );
    assert_eq!(curve[..], full[&promoted].2[..curve.len()]);
    assert!(curve.len() > 1, "{promoted} trained on after its promotion");
}
