//! Tests of the report's content: the lab 1 part 1 golden table, layouts, repeats, partial
//! sweeps, aggregation and CSV fields. [`files`] tests the figures and a whole report written
//! from the stored fixture.

mod bounded;
mod files;
mod models;
mod scalars;

use std::path::Path;

use serde_json::json;

use super::analysis::{self, Stat, best_trial, confused_pairs, stat};
use super::doc;
use super::figures::{Plot, ScatterPlot};
use super::tables::{self, Metric, to_markdown};
use super::{Error, csv, parse, render, write};
use sweep_common::ConfusionMatrix as Confusion;
use sweep_common::results::Results;

/// CIFAR-10's class names, as results.json carries them.
fn cifar() -> &'static [&'static str] {
    sweep_common::DatasetKind::Cifar10.class_names()
}

/// The document `v`, its trials completed with what every `results.json` holds and these tests
/// leave out (an id, the dataset, the hyperparameters they do not vary, the split, the epochs'
/// other metrics, the failed attempts' worker).
fn results(mut v: serde_json::Value) -> Results<'static> {
    if let Some(trials) = v.get_mut("trials").and_then(|t| t.as_array_mut()) {
        for t in trials {
            complete(t);
        }
    }
    serde_json::from_value(v).expect("valid results")
}

fn complete(t: &mut serde_json::Value) {
    let Some(t) = t.as_object_mut() else { return };
    let name = t
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_owned();
    let id = sweep_common::TrialId::from_content(&name);
    t.insert("id".into(), json!(id));
    t.entry("dataset").or_insert(json!("cifar10"));
    t.entry("split")
        .or_insert(json!({"train_ratio": 0.7, "seed": 0}));
    t.entry("status").or_insert(json!("pending"));
    let mut params = params("relu", 1, 1.0, 0);
    if let (Some(all), Some(given)) = (
        params.as_object_mut(),
        t.get("params").and_then(|p| p.as_object()),
    ) {
        all.extend(given.clone());
    }
    t.insert("params".into(), params);
    for e in t
        .get_mut("epochs")
        .and_then(|e| e.as_array_mut())
        .into_iter()
        .flatten()
    {
        for key in ["train_loss", "train_accuracy", "test_accuracy", "seconds"] {
            if let Some(e) = e.as_object_mut() {
                e.entry(key).or_insert(serde_json::Value::Null);
            }
        }
    }
    let attempts = t.get_mut("failed_attempts").and_then(|a| a.as_array_mut());
    for a in attempts
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_object_mut())
    {
        a.entry("worker")
            .or_insert(json!("11111111-1111-4111-8111-111111111111"));
    }
}

fn params(activation: &str, layers: u32, fraction: f64, seed: u64) -> serde_json::Value {
    json!({"activation": activation, "hidden_layers": layers, "hidden_width": 1024,
           "learning_rate": 0.001, "batch_size": 128, "epochs": 20,
           "train_fraction": fraction, "seed": seed})
}

/// Lab 1 part 1 (SPEC.md): rows hidden layers 1..3, columns ReLU, Tanh, Sigmoid.
const LAB_TEST: [[f64; 3]; 3] = [
    [49.30, 43.96, 47.49],
    [50.73, 40.12, 47.62],
    [50.21, 36.49, 45.95],
];
const LAB_TRAIN: [[f64; 3]; 3] = [
    [56.92, 48.36, 55.27],
    [64.80, 42.63, 55.09],
    [70.52, 38.37, 51.37],
];

/// The lab's nine trials in grid order (activation outermost), with the axes listed in
/// `axis_order`.
fn lab_part1(axis_order: &[&str]) -> Results<'static> {
    let acts = [("relu", "ReLU"), ("tanh", "Tanh"), ("sigmoid", "Sigmoid")];
    let mut trials = Vec::new();
    for (c, (act, display)) in acts.iter().enumerate() {
        for layers in 1..=3u32 {
            let r = (layers - 1) as usize;
            trials.push(json!({
                "id": format!("t{c}{r}"), "experiment": "p1_cifar10",
                "name": format!("Lab1_P1_HiddenL_{layers}_Activation_{display}"),
                "dataset": "cifar10", "params": params(act, layers, 1.0, 0),
                "status": "succeeded", "attempts": 1,
                "test_accuracy": LAB_TEST[r][c], "train_accuracy": LAB_TRAIN[r][c],
            }));
        }
    }
    let axes: Vec<serde_json::Value> = axis_order
        .iter()
        .map(|a| match *a {
            "activation" => json!({"param": "activation", "values": ["ReLU", "Tanh", "Sigmoid"]}),
            _ => json!({"param": "hidden_layers", "values": ["1", "2", "3"]}),
        })
        .collect();
    results(json!({
        "format": 1, "sweep": "lab1", "grid_file": "lab1.toml", "finished": true,
        "experiments": [{"name": "p1_cifar10", "title": "Part 1", "dataset": "cifar10",
                         "classes": cifar(), "axes": axes}],
        "trials": trials,
    }))
}

const GOLDEN_TEST: &str = "\
| Hidden layers / Activation | ReLU | Tanh | Sigmoid |
|---|---:|---:|---:|
| 1 | 49.30 | 43.96 | 47.49 |
| 2 | 50.73 | 40.12 | 47.62 |
| 3 | 50.21 | 36.49 | 45.95 |
";

const GOLDEN_TRAIN: &str = "\
| Hidden layers / Activation | ReLU | Tanh | Sigmoid |
|---|---:|---:|---:|
| 1 | 56.92 | 48.36 | 55.27 |
| 2 | 64.80 | 42.63 | 55.09 |
| 3 | 70.52 | 38.37 | 51.37 |
";

#[test]
fn lab1_part1_tables_have_the_labs_layout_and_numbers() {
    let r = lab_part1(&["activation", "hidden_layers"]);
    let views = analysis::views(&r);
    let v = &views[0];
    let test = tables::pivot(v, Metric::Test).expect("two axes give a pivot");
    let train = tables::pivot(v, Metric::Train).expect("two axes give a pivot");
    assert_eq!(to_markdown(&test), GOLDEN_TEST);
    assert_eq!(to_markdown(&train), GOLDEN_TRAIN);
    let md = super::markdown::render(&doc::build(&r));
    assert!(
        md.contains(&format!("**Test accuracy (%)**\n\n{GOLDEN_TEST}")),
        "{md}"
    );
    assert!(
        md.contains(&format!("**Training accuracy (%)**\n\n{GOLDEN_TRAIN}")),
        "{md}"
    );
    // The overfitting the lab discusses: ReLU with 3 layers has the largest gap.
    let gap = tables::pivot(v, Metric::Gap).expect("pivot");
    assert_eq!(gap.rows[2][1], "20.31");
    assert!(
        md.contains("Best trial: **Lab1_P1_HiddenL_2_Activation_ReLU**, test accuracy **50.73 %**")
    );
}

#[test]
fn pivot_layout_follows_the_axis_order_of_param_not_the_file() {
    let r = lab_part1(&["hidden_layers", "activation"]);
    let views = analysis::views(&r);
    let test = tables::pivot(&views[0], Metric::Test).expect("pivot");
    assert_eq!(to_markdown(&test), GOLDEN_TEST);
}

/// Two configurations (train_fraction 0.2 and 1) times three seeds.
fn repeats(statuses: [&str; 3]) -> Results<'static> {
    let mut trials = Vec::new();
    for (fraction, base) in [(0.2, 80.0), (1.0, 88.0)] {
        for (seed, status) in statuses.iter().enumerate() {
            let acc = base + seed as f64 - 1.0; // base - 1, base, base + 1
            let ok = *status == "succeeded";
            trials.push(json!({
                "id": format!("{fraction}-{seed}"), "experiment": "p2",
                "name": format!("P2_{fraction}_seed_{seed}"), "dataset": "fashion-mnist",
                "params": params("relu", 1, fraction, seed as u64), "status": status,
                "attempts": 1,
                "test_accuracy": ok.then_some(acc), "train_accuracy": ok.then_some(acc + 5.0),
                "epochs": [{"epoch": 1, "train_loss": 0.5, "test_accuracy": acc - 2.0},
                           {"epoch": 2, "train_loss": 0.4, "test_accuracy": acc}],
            }));
        }
    }
    results(json!({
        "format": 1, "sweep": "s", "grid_file": "g.toml", "finished": true,
        "experiments": [{"name": "p2", "dataset": "fashion-mnist", "classes": [],
            "axes": [{"param": "train_fraction", "values": ["0.2", "1"]},
                     {"param": "seed", "values": ["0", "1", "2"]}]}],
        "trials": trials,
    }))
}

#[test]
fn repeats_show_mean_and_sample_std_across_seeds() {
    let r = repeats(["succeeded"; 3]);
    let views = analysis::views(&r);
    let v = &views[0];
    assert!(v.repeats);
    assert_eq!(v.configs.len(), 2, "seeds are one configuration");
    let t = tables::configurations(v);
    assert_eq!(
        t.header,
        [
            "Training split ratio",
            "Test accuracy (%)",
            "Training accuracy (%)",
            "Train - test gap (points)"
        ]
    );
    // 79, 80, 81: mean 80, sample std 1 (the population std would be 0.82).
    assert_eq!(
        t.rows[0],
        [
            "0.2",
            "80.00 ± 1.00 (n=3)",
            "85.00 ± 1.00 (n=3)",
            "5.00 ± 0.00 (n=3)"
        ]
    );
    assert_eq!(t.rows[1][1], "88.00 ± 1.00 (n=3)");
    let curves = analysis::curves(&v.configs, analysis::Series::TestAccuracy, |c| c.label());
    assert_eq!(curves[0].label, "0.2");
    assert_eq!(curves[0].points.len(), 2);
    assert_eq!(curves[0].points[1].epoch, 2);
    assert!((curves[0].points[1].mean - 80.0).abs() < 1e-9);
    assert!((curves[0].points[1].std.expect("three runs") - 1.0).abs() < 1e-9);
    let md = super::markdown::render(&doc::build(&r));
    assert!(md.contains("Each configuration ran with 3 seeds"), "{md}");
    assert!(
        md.contains("Training split ratio = 1**, 88.00 ± 1.00 % (n=3)"),
        "{md}"
    );
}

#[test]
fn repeats_count_only_the_seeds_that_succeeded() {
    let r = repeats(["succeeded", "succeeded", "failed"]);
    let views = analysis::views(&r);
    let t = tables::configurations(&views[0]);
    // 79 and 80: mean 79.5, sample std 0.707.
    assert_eq!(t.rows[0][1], "79.50 ± 0.71 (n=2)");
    let r = repeats(["failed", "failed", "succeeded"]);
    let views = analysis::views(&r);
    let t = tables::configurations(&views[0]);
    assert_eq!(t.rows[0][1], "81.00 (n=1)");
    let r = repeats(["failed", "failed", "pending"]);
    let views = analysis::views(&r);
    assert_eq!(tables::configurations(&views[0]).rows[0][1], "-");
    let r = repeats(["failed"; 3]);
    let views = analysis::views(&r);
    assert_eq!(tables::configurations(&views[0]).rows[0][1], "failed");
}

#[test]
fn stat_uses_the_sample_std_and_skips_non_finite_values() {
    assert_eq!(stat([]), None);
    assert_eq!(stat([f64::NAN]), None);
    assert_eq!(
        stat([2.0]),
        Some(Stat {
            mean: 2.0,
            std: None,
            n: 1
        })
    );
    let s = stat([
        2.0,
        4.0,
        f64::NAN,
        4.0,
        4.0,
        5.0,
        5.0,
        7.0,
        9.0,
        f64::INFINITY,
    ])
    .expect("values");
    assert_eq!(s.n, 8);
    assert!((s.mean - 5.0).abs() < 1e-12);
    assert!((s.std.expect("n > 1") - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
}

#[test]
fn nan_never_ranks_as_best() {
    let t = |name: &str, status: &str, acc: f64| json!({"experiment": "e", "name": name, "status": status, "test_accuracy": acc});
    // serde_json writes NaN as null: the document holds it as a trial without an accuracy.
    let mut nan = t("nan", "succeeded", 0.0);
    nan["test_accuracy"] = serde_json::Value::Null;
    let r = results(json!({"trials": [
        nan, t("low", "succeeded", 10.0), t("running", "running", 99.0),
        t("high", "succeeded", 20.0), t("nan2", "succeeded", 0.0)
    ]}));
    let [nan, low, pending, high, _] = [0, 1, 2, 3, 4].map(|i| &r.trials[i]);
    let mut nan = nan.clone();
    nan.test_accuracy = Some(f64::NAN);
    let best = best_trial(&[&nan, low, pending, high, &nan]).expect("a best");
    assert_eq!(best.0.name, "high");
    assert!(best_trial(&[&nan]).is_none());
}

#[test]
fn confused_pairs_are_the_largest_off_diagonal_cells() {
    let m = Confusion {
        classes: 3,
        counts: vec![50, 3, 7, 9, 40, 0, 7, 1, 30],
    };
    let names = vec!["cat".to_owned(), "dog".to_owned()];
    let pairs: Vec<String> = confused_pairs(&m, &names, 3)
        .iter()
        .map(ToString::to_string)
        .collect();
    // Ties (7 and 7) in row-major order; a class without a name shows as its index.
    assert_eq!(pairs, ["dog -> cat: 9", "cat -> 2: 7", "2 -> cat: 7"]);
    let bad = Confusion {
        classes: 3,
        counts: vec![1, 2],
    };
    assert!(confused_pairs(&bad, &names, 3).is_empty());
}

fn one_trial_per(axes: serde_json::Value, trials: &[serde_json::Value]) -> Results<'static> {
    results(json!({
        "format": 1, "sweep": "s", "finished": true,
        "experiments": [{"name": "e", "dataset": "cifar10", "axes": axes}],
        "trials": trials,
    }))
}

#[test]
fn one_axis_gives_a_column_per_metric_and_none_gives_one_row() {
    let trial = |lr: f64, acc: f64| {
        json!({"experiment": "e", "name": format!("lr{lr}"), "status": "succeeded",
               "params": {"learning_rate": lr}, "test_accuracy": acc, "train_accuracy": acc + 1.0})
    };
    let r = one_trial_per(
        json!([{"param": "learning_rate", "values": ["0.01", "0.001"]}]),
        &[trial(0.01, 40.0), trial(0.001, 50.0)],
    );
    let t = tables::configurations(&analysis::views(&r)[0]);
    assert_eq!(t.header[0], "Learning rate");
    assert_eq!(
        t.rows,
        [
            ["0.01", "40.00", "41.00", "1.00"],
            ["0.001", "50.00", "51.00", "1.00"]
        ]
    );

    let r = one_trial_per(json!([]), &[trial(0.01, 40.0)]);
    let t = tables::configurations(&analysis::views(&r)[0]);
    assert_eq!(t.header[0], "Configuration");
    assert_eq!(t.rows, [["lr0.01", "40.00", "41.00", "1.00"]]);
}

#[test]
fn three_axes_give_a_flat_table_with_a_column_per_axis() {
    let mut trials = Vec::new();
    for act in ["relu", "tanh"] {
        for layers in [1, 2] {
            for width in [64, 128] {
                trials.push(
                    json!({"experiment": "e", "name": format!("{act}{layers}{width}"),
                    "status": "succeeded", "test_accuracy": f64::from(layers * width),
                    "train_accuracy": 1.0,
                    "params": {"activation": act, "hidden_layers": layers, "hidden_width": width}}),
                );
            }
        }
    }
    let r = one_trial_per(
        json!([{"param": "activation", "values": ["ReLU", "Tanh"]},
               {"param": "hidden_layers", "values": ["1", "2"]},
               {"param": "hidden_width", "values": ["64", "128"]}]),
        &trials,
    );
    let v = &analysis::views(&r)[0];
    assert!(tables::pivot(v, Metric::Test).is_none());
    let t = tables::configurations(v);
    assert_eq!(
        &t.header[..4],
        [
            "Activation",
            "Hidden layers",
            "Hidden width",
            "Test accuracy (%)"
        ]
    );
    assert_eq!(t.rows.len(), 8);
    assert_eq!(&t.rows[3][..4], ["ReLU", "2", "128", "256.00"]);
    assert_eq!(&t.rows[4][..4], ["Tanh", "1", "64", "64.00"]);
}

#[test]
fn csv_fields_are_quoted_when_needed() {
    assert_eq!(csv::field("plain"), "plain");
    assert_eq!(csv::field("a,b"), "\"a,b\"");
    assert_eq!(csv::field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv::field("two\nlines"), "\"two\nlines\"");
}

#[test]
fn csv_cells_never_run_as_formulas() {
    assert_eq!(csv::field("=1+1"), "'=1+1");
    assert_eq!(csv::field("@SUM(A1:A9)"), "'@SUM(A1:A9)");
    assert_eq!(csv::field("-0.25"), "-0.25");
    assert_eq!(
        csv::field("=HYPERLINK(\"http://x\",\"y\")"),
        "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
    );
}

/// Names, a title and failure messages holding markup, HTML, table separators and line breaks
/// (a results.json from an older version, or edited by hand) show as text in report.md and as
/// inert cells in results.csv.
#[test]
fn hostile_text_shows_as_text() {
    let r = results(json!({
        "format": 1, "sweep": "s", "finished": true,
        "experiments": [{"name": "e", "title": "<img src=x onerror=alert(1)> | *t*",
            "dataset": "cifar10", "classes": cifar(),
            "axes": [{"param": "activation", "values": ["ReLU", "Tanh"]}]}],
        "trials": [
            {"experiment": "e", "name": "a|b\n| x | y |", "status": "failed", "attempts": 1,
             "worker": "=cmd|' /C calc'!A0",
             "params": {"activation": "relu"},
             "failure": "<script>alert(1)</script>\n## Sweep finished | all good",
             "failed_attempts": [{"attempt": 1, "kind": "data", "message": "x\u{202e}y"}]},
            {"experiment": "e", "name": "t_tanh", "status": "succeeded", "attempts": 1,
             "params": {"activation": "tanh"}, "test_accuracy": 50.0, "train_accuracy": 60.0},
        ],
    }));
    let out = render(&r).expect("renders");
    let md = &out.markdown;
    assert!(!md.contains('<'), "{md}");
    assert!(
        !md.contains(|c: char| c != '\n' && sweep_common::text::forbidden(c)),
        "{md}"
    );
    assert!(
        md.contains("&lt;img src=x onerror=alert(1)> \\| \\*t\\*"),
        "{md}"
    );
    assert!(
        !md.lines().any(|l| l.starts_with("## Sweep finished")),
        "{md}"
    );
    // Every table row has as many cells as its header.
    let cells = |l: &str| l.replace("\\|", "").matches('|').count();
    for table in md.split("\n\n").filter(|b| b.starts_with('|')) {
        let mut lines = table.lines();
        let header = cells(lines.next().expect("a header"));
        assert!(lines.all(|l| cells(l) == header), "{table}");
    }
    let csv = &out.results_csv;
    assert!(csv.contains(",'=cmd|' /C calc'!A0,"), "{csv}");
    // The comparison data in report.html holds names as JSON strings with no markup.
    assert!(!out.html.contains("<img src=x"), "markup in report.html");
    assert!(
        out.html
            .contains("\\u003cimg src=x onerror=alert(1)\\u003e")
    );
}

#[test]
fn figure_stems_are_safe_file_names() {
    assert_eq!(
        doc::sanitize("Lab1_P2_TrainingRatioSplit_0.2"),
        "Lab1_P2_TrainingRatioSplit_0.2"
    );
    assert_eq!(doc::sanitize("../a b/c"), "_.._a_b_c");
    assert_eq!(doc::sanitize(""), "_");
}

#[test]
fn partial_sweep_renders_with_failures_and_pending_trials() {
    let r = results(json!({
        "format": 1, "sweep": "partial", "finished": false,
        "experiments": [{"name": "e", "dataset": "cifar10", "classes": cifar(),
            "axes": [{"param": "activation", "values": ["ReLU", "Tanh"]},
                     {"param": "hidden_layers", "values": ["1", "2"]}]}],
        "trials": [
            {"experiment": "e", "name": "a", "status": "failed", "attempts": 3,
             "params": {"activation": "relu", "hidden_layers": 1},
             "failure": "out of memory on every attempt",
             "failed_attempts": [{"attempt": 1, "kind": "out_of_memory", "message": "oom"}]},
            {"experiment": "e", "name": "b", "status": "running", "attempts": 1,
             "params": {"activation": "relu", "hidden_layers": 2},
             "epochs": [{"epoch": 1, "train_loss": 2.0, "test_accuracy": 30.0}]},
            {"experiment": "e", "name": "c", "status": "pending",
             "params": {"activation": "tanh", "hidden_layers": 1}},
        ],
    }));
    let out = render(&r).expect("a partial sweep renders");
    let test = tables::pivot(&analysis::views(&r)[0], Metric::Test).expect("pivot");
    assert_eq!(test.rows, [["1", "failed", "-"], ["2", "-", "-"]]);
    assert!(out.markdown.contains("**Partial report:**"));
    assert!(
        out.markdown
            .contains("**a** failed after 3 attempts: out of memory on every attempt")
    );
    assert!(out.markdown.contains("a, attempt 1 (out_of_memory): oom"));
    assert!(out.markdown.contains("No trial has a result yet."));
    assert!(
        out.markdown
            .contains("No confusion matrix has been recorded yet.")
    );
    // The running trial's first epoch is already on the learning curves.
    assert_eq!(out.figures.len(), 2);
    assert!(
        out.results_csv
            .lines()
            .nth(1)
            .expect("a row")
            .contains(",failed,3,")
    );
    assert_eq!(out.epochs_csv.lines().count(), 2);
    // Nothing at all still makes a report.
    let empty = render(&results(json!({}))).expect("empty renders");
    assert!(empty.figures.is_empty());
}

#[test]
fn parse_errors_name_the_file() {
    let path = Path::new("/x/results.json");
    let e = parse("{", path).expect_err("invalid json");
    assert!(matches!(e, Error::Parse { .. }));
    assert!(
        e.to_string()
            .starts_with("/x/results.json is not a valid results file"),
        "{e}"
    );
    let e = parse(r#"{"format": 99}"#, path).expect_err("newer format");
    assert!(e.to_string().contains("format 99"), "{e}");
    let dir = tempfile::tempdir().expect("tempdir");
    let e = write(dir.path()).expect_err("no results.json");
    assert!(matches!(e, Error::Read { .. }));
    assert!(
        e.to_string()
            .contains(&dir.path().join("results.json").display().to_string())
    );
}

/// With more than two axes, a layout named in the grid file gives one pivot per combination of
/// the other axes, rows and columns as named.
#[test]
fn named_layout_gives_one_pivot_per_combination_of_the_other_axes() {
    let mut trials = Vec::new();
    for act in ["relu", "tanh"] {
        for layers in [1, 2] {
            for width in [64, 128] {
                trials.push(
                    json!({"experiment": "e", "name": format!("{act}{layers}{width}"),
                    "status": "succeeded", "test_accuracy": f64::from(layers * width) + if act == "tanh" { 0.5 } else { 0.0 },
                    "train_accuracy": 1.0,
                    "params": {"activation": act, "hidden_layers": layers, "hidden_width": width}}),
                );
            }
        }
    }
    let r = results(json!({
        "format": 1, "sweep": "s", "finished": true,
        "experiments": [{"name": "e", "dataset": "cifar10",
            "table": {"rows": "hidden_width", "columns": "hidden_layers"},
            "axes": [{"param": "activation", "values": ["ReLU", "Tanh"]},
                     {"param": "hidden_layers", "values": ["1", "2"]},
                     {"param": "hidden_width", "values": ["64", "128"]}]}],
        "trials": trials,
    }));
    let v = &analysis::views(&r)[0];
    let slices = tables::pivot_slices(v, Metric::Test);
    let captions: Vec<&str> = slices.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(captions, ["Activation ReLU", "Activation Tanh"]);
    let (_, tanh) = &slices[1];
    assert_eq!(tanh.header, ["Hidden width / Hidden layers", "1", "2"]);
    assert_eq!(tanh.rows[0], ["64", "64.50", "128.50"]);
    assert_eq!(tanh.rows[1], ["128", "128.50", "256.50"]);
    let md = super::markdown::render(&doc::build(&r));
    assert!(md.contains("Test accuracy (%) (Activation Tanh)"), "{md}");
}

/// A model axis pivots like any other (its rows the models' summaries), and the trials table
/// names each trial's architecture in one line with its parameter count.
#[test]
fn architecture_axes_pivot_and_trials_name_their_model() {
    let cnn = "conv(16,3,p=1) bn relu maxpool(2) flatten linear(10)";
    let mut trials = Vec::new();
    for (m, model) in ["mlp", cnn].iter().enumerate() {
        for (l, lr) in [0.001, 0.01].iter().enumerate() {
            let mut p = params("relu", 1, 1.0, 0);
            p["model"] = json!(model);
            p["learning_rate"] = json!(lr);
            trials.push(json!({
                "experiment": "arch", "name": format!("t{m}{l}"), "params": p,
                "status": "succeeded", "attempts": 1,
                "test_accuracy": 50.0 + (2 * m + l) as f64, "train_accuracy": 60.0,
            }));
        }
    }
    let r = results(json!({
        "format": 1, "sweep": "s", "grid_file": "g.toml", "finished": true,
        "experiments": [{"name": "arch", "dataset": "cifar10", "classes": cifar(),
            "axes": [{"param": "learning_rate", "values": ["0.001", "0.01"]},
                     {"param": "model", "values": ["mlp", cnn]}]}],
        "trials": trials,
    }));
    let views = analysis::views(&r);
    let test = tables::pivot(&views[0], Metric::Test).expect("two axes give a pivot");
    assert_eq!(test.header[0], "Model / Learning rate");
    assert_eq!(test.rows[0][..3], ["mlp", "50.00", "51.00"]);
    let cnn_params = 16 * 3 * 9 + 16 + 2 * 16 + 16 * 16 * 16 * 10 + 10;
    let cnn_label = format!("1 conv 16, 1 linear 10; bn, max pool, {cnn_params} params");
    assert_eq!(test.rows[1][..3], [cnn_label.as_str(), "52.00", "53.00"]);
    let md = super::markdown::render(&doc::build(&r));
    // Linear(3072, 1024) and Linear(1024, 10); the CNN's conv, bn and linear.
    assert!(md.contains("| MLP 3072-1024-10, ReLU | 3.16M |"), "{md}");
    assert!(
        md.contains(&format!(
            "| 1 conv 16, 1 linear 10; bn, max pool | {cnn_params} |"
        )),
        "{md}"
    );
}

#[test]
fn keys_with_many_numeric_values_get_a_scatter_against_the_accuracy() {
    // Six sampled learning rates (no axis names them), two of them stopped early, and a
    // 3-value width axis: a scatter for the learning rate only, on a log axis.
    let lrs = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.1];
    let trials: Vec<serde_json::Value> = lrs
        .iter()
        .enumerate()
        .map(|(i, lr)| {
            let stopped = i < 2;
            let epochs: Vec<serde_json::Value> = (1..=if stopped { 1 } else { 3 })
                .map(|e| json!({"epoch": e, "test_accuracy": 40.0 + 5.0 * i as f64 + e as f64}))
                .collect();
            let width = [8, 16, 32][i % 3];
            let mut t = json!({
                "name": format!("t{i}"), "experiment": "e",
                "status": if stopped { "stopped" } else { "succeeded" },
                "params": {"learning_rate": lr, "hidden_width": width},
                "epochs": epochs,
            });
            if stopped {
                t["stopped"] = json!({"epoch": 1, "reason": "asha"});
            }
            t
        })
        .collect();
    let r = one_trial_per(
        json!([{"param": "hidden_width", "values": ["8", "16", "32"]}]),
        &trials,
    );
    let document = doc::build(&r);
    let scatters: Vec<&ScatterPlot> = document
        .figures
        .iter()
        .filter_map(|(_, p)| match p {
            Plot::Scatter(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(scatters.len(), 1, "one scatter, for the learning rate");
    let s = scatters[0];
    assert_eq!(s.x_label, "Learning rate");
    assert!(s.log_x, "0.0001 to 0.1 spans three decades");
    assert_eq!(s.points.len(), 6);
    // The stopped trials are marked, at the accuracy of their last epoch.
    assert_eq!(s.points[0], (0.0001, 41.0, true));
    assert_eq!(s.points[5], (0.1, 68.0, false));
    assert!(
        document
            .figures
            .iter()
            .any(|(stem, _)| stem == "e-scatter-learning_rate")
    );
    // It draws.
    let svg = Plot::Scatter(s.clone()).svg().expect("svg");
    assert!(
        svg.contains("stopped early"),
        "the legend names stopped trials"
    );
}
