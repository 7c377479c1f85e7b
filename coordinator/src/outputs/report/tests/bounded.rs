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
    let mut p = Pass::start_with(dir.path(), &r).expect("starts");
    for t in r.trials.clone() {
        p.trial(t).expect("trial");
    }
    let passed = p
        .finish(Results {
            trials: Vec::new(),
            ..r.clone()
        })
        .expect("finishes");
    assert!(passed.complete);
    let [summary] = passed.summaries.experiments.as_slice() else {
        panic!("one experiment")
    };
    assert_eq!(summary.confusion_trials.len(), MAX_CONFUSION_FIGURES);
    assert_eq!(summary.counts.trials, n);
    let tally = &summary.confusions;
    assert_eq!(tally.with_matrix, n);
    let summed = tally.summed.as_ref().expect("a sum");
    assert_eq!(
        summed.counts,
        [(0..n as u64).sum(), n as u64, 2 * n as u64, 3 * n as u64]
    );
    assert_eq!(tally, &pass::confusions(&r.trials)["e"]);
    // The same document as from every trial in memory.
    assert_eq!(
        doc::build_with(&passed.header, &passed.summaries),
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

#[test]
fn statistics_fold_into_running_sums_past_the_exact_values() {
    use crate::report::analysis::{Accum, EXACT_VALUES, stat};
    let values: Vec<f64> = (0..3 * EXACT_VALUES)
        .map(|i| (i % 17) as f64 * 0.5 + 40.0)
        .collect();
    for n in [1, EXACT_VALUES, EXACT_VALUES + 1, values.len()] {
        let mut acc = Accum::default();
        for &x in &values[..n] {
            acc.add(x);
        }
        acc.add(f64::NAN);
        let (got, want) = (
            acc.stat().expect("values"),
            stat(values[..n].iter().copied()),
        );
        let want = want.expect("values");
        if n <= EXACT_VALUES {
            assert_eq!(got, want, "exact up to {EXACT_VALUES} values");
        }
        assert_eq!(got.n, want.n);
        assert!((got.mean - want.mean).abs() < 1e-9, "{n}: {got:?} {want:?}");
        match (got.std, want.std) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "{n}: {a} {b}"),
            (a, b) => assert_eq!(a, b),
        }
    }
}

/// `n` succeeded trials of one experiment whose hidden width takes 7 values, each with a curve.
fn widths(n: usize) -> Results<'static> {
    let trials: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({"experiment": "w", "name": format!("w{i}"), "status": "succeeded",
                "test_accuracy": (i % 89) as f64, "params": {"seed": i / 7, "hidden_width": 8 + i % 7},
                "epochs": [{"epoch": 1, "test_accuracy": (i % 89) as f64, "train_loss": 1.0}]})
        })
        .collect();
    results(json!({
        "format": 1, "sweep": "s", "finished": true,
        "experiments": [{"name": "w", "dataset": "fashion-mnist", "axes": []}],
        "trials": trials,
    }))
}

#[test]
fn scatters_draw_a_bounded_number_of_points_and_say_so() {
    use crate::report::summary::{MAX_SCATTER_POINTS, Summaries};
    let n = MAX_SCATTER_POINTS + 10;
    let s = Summaries::of(&widths(n));
    let (points, lo, hi) = s.experiments[0]
        .scatter
        .of(sweep_common::grid::Param::HiddenWidth)
        .expect("seven widths");
    assert_eq!(points.len(), MAX_SCATTER_POINTS);
    assert_eq!((lo, hi), (8.0, 14.0));
    let md = crate::report::markdown::render(&doc::build(&widths(n)));
    assert!(
        md.contains(&format!(
            "Each scatter shows the first {MAX_SCATTER_POINTS} of the {n} trials that ended"
        )),
        "{md}"
    );
    let md = crate::report::markdown::render(&doc::build(&widths(100)));
    assert!(md.contains("Final test accuracy against"), "{md}");
    assert!(!md.contains("Each scatter shows"), "{md}");
}

#[test]
fn a_header_after_the_trials_gives_the_same_report() {
    let r = super::lab_part1(&["activation", "hidden_layers"]);
    let mut v = serde_json::to_value(&r).expect("json");
    let trials = v["trials"].take();
    let obj = v.as_object_mut().expect("object");
    obj.remove("trials");
    let mut reordered = serde_json::Map::new();
    reordered.insert("trials".into(), trials);
    reordered.extend(obj.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("results.json"),
        serde_json::Value::Object(reordered).to_string(),
    )
    .expect("write");
    let paths = write(dir.path()).expect("written");
    let rendered = render(&r).expect("rendered");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("read");
    assert_eq!(read(&paths.markdown), rendered.markdown);
    assert_eq!(read(&paths.html), rendered.html);
    assert!(
        !dir.path().join(".report-rows.tmp").exists(),
        "the spool is removed"
    );
}
