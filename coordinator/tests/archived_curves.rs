//! Issue 20: a succeeded trial's curve and confusion matrices leave the coordinator's memory once
//! committed, and come back from the state database: in the live detail view, in `results.json`,
//! and after a restart.

#![allow(clippy::unwrap_used)]

mod common;
mod harness;

use common::GRID;
use harness::{TestCoordinator, options};
use sweep_proto::v1;

const CURVE: [f64; 3] = [50.0, 60.0, 70.0];

/// The test accuracies of the detailed status's history of trial `name`.
async fn history(c: &TestCoordinator, name: &str) -> (u32, Vec<f64>) {
    let mut operator = c.operator().await;
    let status = operator
        .status(v1::StatusRequest {
            detail: true,
            trials: Some(v1::TrialQuery {
                trial: Some(name.to_owned()),
                ..v1::TrialQuery::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let row = status.trials.iter().find(|t| t.name == name).unwrap();
    let curve = row.history.iter().map(|m| m.test_accuracy).collect();
    (row.epoch, curve)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_trials_curve_is_served_from_the_database_live_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut w = c.worker("w", 2).await;
    let (a, attempt) = w.lease_trial().await;
    for (i, test) in CURVE.iter().enumerate() {
        w.report(a.id, attempt, i as u32 + 1, *test).await.unwrap();
    }
    // Its final weights, so that the restart below does not train it again.
    w.upload(v1::ArtifactKind::FinalWeights, a.id, attempt, 0, b"weights")
        .await
        .unwrap();
    w.complete(&a, attempt, &CURVE).await.unwrap();
    // `complete` was answered once its result was committed: the next batch (this lease)
    // archives the trial, so its history below comes from the database.
    let _ = w.lease_trial().await;
    assert_eq!(history(&c, &a.name).await, (3, CURVE.to_vec()));
    c.stop().await.unwrap();

    // results.json, written as the coordinator stopped, has its curve and matrices.
    let text = std::fs::read_to_string(dir.path().join("out/results.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let record = doc["trials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == a.name.as_str())
        .unwrap();
    let accuracies: Vec<f64> = record["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["test_accuracy"].as_f64().unwrap())
        .collect();
    assert_eq!(accuracies, CURVE.to_vec());
    let want = common::result(&a, &CURVE).last;
    assert_eq!(
        record["test_confusion"],
        serde_json::to_value(&want.test_confusion).unwrap()
    );
    assert_eq!(
        record["train_confusion"],
        serde_json::to_value(&want.train_confusion).unwrap()
    );

    // Restarted, the coordinator loads it archived; its curve is read back again.
    let c = TestCoordinator::try_start(GRID, options(dir.path()))
        .await
        .unwrap();
    assert_eq!(history(&c, &a.name).await, (3, CURVE.to_vec()));
    c.stop().await.unwrap();
}
