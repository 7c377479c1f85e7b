//! The report of a big sweep in bounded memory: the pass keeps the confusion matrices only of
//! the trials that get a figure (but counts and sums them all), and the trials table of a huge
//! experiment lists the best and the worst trials.

use serde_json::json;

use super::results;
use crate::report::doc::{self, Block, MAX_CONFUSION_FIGURES, MAX_TRIAL_ROWS};
use crate::report::pass::{self, Pass};
use crate::report::{render, write};
use sweep_common::results::Results;

/// `n` succeeded trials of experiment `e`, trial i with test accuracy i % 97 and a 2x2 test
/// matrix [i, 1, 2, 3].
fn with_matrices(n: usize) -> Results<'static> {
    let trials: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({"experiment": "e", "name": format!("t{i}"), "status": "succeeded",
                "test_accuracy": (i % 97) as f64, "train_accuracy": 50.0,
                "params": {"seed": i},
                "epochs": [{"epoch": 1, "test_accuracy": (i % 97) as f64}],
                "train_confusion": {"classes": 2, "counts": [1, 0, 0, 1]},
                "test_confusion": {"classes": 2, "counts": [i, 1, 2, 3]}})
        })
        .collect();
    results(json!({
        "format": 1, "sweep": "s", "finished": true,
        "experiments": [{"name": "e", "dataset": "cifar10", "axes": []}],
        "trials": trials,
    }))
}

#[test]
fn the_pass_keeps_only_the_drawn_matrices_and_sums_them_all() {
    let n = MAX_CONFUSION_FIGURES + 50;
    let r = with_matrices(n);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Pass::start(dir.path()).expect("starts");
    for t in r.trials.clone() {
        p.trial(t).expect("trial");
    }
    let passed = p
        .finish(Results {
            trials: Vec::new(),
            ..r.clone()
        })
        .expect("finishes");
    let kept = passed
        .results
        .trials
        .iter()
        .filter(|t| t.test_confusion.is_some() || t.train_confusion.is_some())
        .count();
    assert_eq!(kept, MAX_CONFUSION_FIGURES);
    assert_eq!(passed.results.trials.len(), n);
    let tally = &passed.confusions["e"];
    assert_eq!(tally.with_matrix, n);
    let summed = tally.summed.as_ref().expect("a sum");
    assert_eq!(
        summed.counts,
        [(0..n as u64).sum(), n as u64, 2 * n as u64, 3 * n as u64]
    );
    assert_eq!(passed.confusions, pass::confusions(&r.trials));
    // The same document as from every matrix.
    assert_eq!(
        doc::build_with(&passed.results, &passed.confusions),
        doc::build(&r)
    );
}

#[test]
fn the_written_report_is_the_rendered_one() {
    let r = with_matrices(MAX_CONFUSION_FIGURES + 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = serde_json::to_string(&r).expect("json");
    std::fs::write(dir.path().join("results.json"), text).expect("write");
    let paths = write(dir.path()).expect("written");
    let rendered = render(&r).expect("rendered");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("read");
    assert_eq!(read(&paths.markdown), rendered.markdown);
    assert_eq!(read(&paths.html), rendered.html);
    assert_eq!(read(&paths.results_csv), rendered.results_csv);
    assert_eq!(read(&paths.epochs_csv), rendered.epochs_csv);
    assert_eq!(paths.figures.len(), 2 * rendered.figures.len());
    let tb = crate::tensorboard::render(&r);
    assert_eq!(paths.tensorboard.len(), tb.len());
    for (path, f) in paths.tensorboard.iter().zip(&tb) {
        assert_eq!(path, &dir.path().join("tensorboard").join(&f.path));
        assert_eq!(std::fs::read(path).expect("event file"), f.bytes);
    }
}

#[test]
fn a_huge_experiment_lists_its_best_and_worst_trials() {
    let n = MAX_TRIAL_ROWS + 3;
    let r = with_matrices(n);
    let d = doc::build(&r);
    let tables: Vec<&crate::report::tables::Table> = d
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Table { table, .. } if table.header[0] == "Trial" => Some(table),
            _ => None,
        })
        .collect();
    let [table] = tables.as_slice() else {
        panic!("one trials table: {tables:?}")
    };
    assert_eq!(table.rows.len(), MAX_TRIAL_ROWS);
    let names: Vec<&str> = table.rows.iter().map(|r| r[0].as_str()).collect();
    // Accuracy i % 97: 96 is the best (t96 first), 0 the worst; listed in grid order.
    assert_eq!(names[0], "t0");
    assert!(names.contains(&"t96"));
    let listed = |i: usize| names.contains(&format!("t{i}").as_str());
    let best = (0..n).filter(|i| i % 97 == 96).count();
    assert!((0..n).filter(|i| i % 97 == 96).all(listed), "{best} best");
    assert!((0..n).filter(|i| i % 97 == 0).all(listed));
    let md = crate::report::markdown::render(&d);
    assert!(md.contains(&format!(
        "The best {} and the worst {} of the {n} trials by test accuracy",
        MAX_TRIAL_ROWS / 2,
        MAX_TRIAL_ROWS / 2
    )));

    // At the limit, every trial.
    let r = with_matrices(MAX_TRIAL_ROWS);
    let md = crate::report::markdown::render(&doc::build(&r));
    assert!(!md.contains("The best "));
}
