//! A model axis in the report (issue 18, part 5): legends, pivot headers and captions name each
//! model by its one-line summary and parameter count, distinct between models even when their
//! specs share a long prefix, with a key from those names to the specs.

use serde_json::json;

use super::super::analysis;
use super::super::doc;
use super::super::figures::{CurvePlot, Plot};
use super::super::tables::{self, Metric};
use super::results;

/// The four CNNs of `examples/lab2-cnn-cifar10.toml`: the 2-stage and the 3-stage nets share
/// their first 40 characters two by two.
const LAB2: [&str; 4] = [
    "conv(32,3,p=1) bn relu maxpool(2) conv(64,3,p=1) bn relu maxpool(2) gap linear(10)",
    "conv(64,3,p=1) bn relu maxpool(2) conv(128,3,p=1) bn relu maxpool(2) gap linear(10)",
    "conv(32,3,p=1) bn relu maxpool(2) conv(64,3,p=1) bn relu maxpool(2) conv(128,3,p=1) bn \
     relu maxpool(2) gap linear(10)",
    "conv(64,3,p=1) bn relu maxpool(2) conv(128,3,p=1) bn relu maxpool(2) conv(256,3,p=1) bn \
     relu maxpool(2) gap linear(10)",
];

/// The lab 2 grid's 8 trials (4 models x 2 crop paddings), one epoch each, laid out as its
/// file names (rows: model, columns: crop padding).
fn lab2() -> sweep_common::results::Results<'static> {
    let mut trials = Vec::new();
    for (m, model) in LAB2.iter().enumerate() {
        for (c, crop) in [0, 4].iter().enumerate() {
            let acc = 20.0 + (2 * m + c) as f64;
            trials.push(json!({
                "experiment": "cnn", "name": format!("t{m}{c}"), "status": "succeeded",
                "params": {"model": model, "random_crop": crop},
                "test_accuracy": acc, "train_accuracy": acc,
                "epochs": [{"epoch": 1, "test_accuracy": acc, "train_loss": 2.0}],
            }));
        }
    }
    results(json!({
        "format": 1, "sweep": "lab2", "finished": true,
        "experiments": [{"name": "cnn", "dataset": "cifar10",
            "table": {"rows": "model", "columns": "random_crop"},
            "axes": [{"param": "model", "values": LAB2},
                     {"param": "random_crop", "values": ["0", "4"]}]}],
        "trials": trials,
    }))
}

fn distinct(labels: &[String]) -> bool {
    let set: std::collections::HashSet<&String> = labels.iter().collect();
    set.len() == labels.len()
}

#[test]
fn models_sharing_a_long_prefix_get_distinct_readable_legend_entries() {
    let r = lab2();
    let d = doc::build(&r);
    let curves: Vec<&CurvePlot> = d
        .figures
        .iter()
        .filter_map(|(_, p)| match p {
            Plot::Curves(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(!curves.is_empty(), "the report draws learning curves");
    for c in curves {
        let labels = c.legend_labels();
        assert_eq!(labels.len(), 8, "{labels:?}");
        assert!(distinct(&labels), "legend entries alike: {labels:?}");
        assert_eq!(
            labels[0],
            "0 | 2 conv 32-64, 1 linear 10; bn, max pool, avg pool, 20234 params"
        );
        assert_eq!(
            c.legend_title.as_deref(),
            Some("Random crop padding | Model")
        );
        assert!(
            labels.iter().all(|l| !l.contains("conv(")),
            "legends name models by their summary, not their spec: {labels:?}"
        );
    }
}

#[test]
fn pivot_headers_and_the_key_name_models_by_their_summary() {
    let r = lab2();
    let v = &analysis::views(&r)[0];
    let pivot = tables::pivot(v, Metric::Test).expect("two axes give a pivot");
    let rows: Vec<String> = pivot.rows.iter().map(|r| r[0].clone()).collect();
    assert!(distinct(&rows), "{rows:?}");
    assert_eq!(
        rows[3],
        "3 conv 64-128-256, 1 linear 10; bn, max pool, avg pool, 0.37M params"
    );
    // The key maps each name back to the spec as the grid file writes it.
    let key = tables::models(v).expect("a model axis gets a key");
    assert_eq!(key.rows.len(), 4);
    assert_eq!(key.rows[2], [rows[2].clone(), LAB2[2].to_owned()]);
    let md = super::super::markdown::render(&doc::build(&r));
    assert!(md.contains(tables::MODELS_CAPTION), "{md}");
    assert!(md.contains("Model (4 values, listed below)"), "{md}");
}

/// A legend cuts long labels; labels the cut would make alike stay apart.
#[test]
fn cutting_a_legend_label_keeps_labels_apart() {
    let long = "x".repeat(200);
    let series = |label: String| analysis::Curve {
        label,
        points: vec![analysis::CurvePoint {
            epoch: 1,
            mean: 1.0,
            std: None,
        }],
    };
    let plot = CurvePlot {
        title: "t".into(),
        x_label: "Epoch".into(),
        y_label: "y".into(),
        legend_title: None,
        series: vec![series(format!("{long}a")), series(format!("{long}b"))],
        y_bounds: (0.0, 100.0),
    };
    let labels = plot.legend_labels();
    assert!(distinct(&labels), "{labels:?}");
    assert!(labels.iter().all(|l| l.chars().count() < 100), "{labels:?}");
}

/// The comparison views (parallel coordinates, the trial table) name models as the tables do.
#[test]
fn the_comparison_views_name_models_by_their_label() {
    let r = lab2();
    let html = super::super::render(&r).expect("renders").html;
    let start = html
        .find(r#"id="sweep-compare-data">"#)
        .map(|i| i + r#"id="sweep-compare-data">"#.len())
        .expect("the comparison data");
    let end = start + html[start..].find("</script>").expect("its end");
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).expect("its JSON");
    let column = data["params"]
        .as_array()
        .and_then(|ps| ps.iter().position(|p| p["key"] == "model"))
        .expect("the model varies");
    let shown: Vec<String> = data["trials"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row[6 + column].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(shown.len(), 8);
    let axis = &analysis::views(&r)[0].axes[1];
    assert_eq!(shown[0], axis.shown[0]);
    assert_eq!(shown[7], axis.shown[3]);
    assert!(shown.iter().all(|l| !l.contains("conv(")), "{shown:?}");
}

/// A model axis beyond the two of a named layout: one pivot per model, its caption naming the
/// model by its label.
#[test]
fn pivot_captions_name_models_by_their_label() {
    let mut trials = Vec::new();
    for model in &LAB2[..2] {
        for lr in [0.1, 0.01] {
            for crop in [0, 4] {
                trials.push(json!({
                    "experiment": "cnn", "name": format!("t{model}{lr}{crop}"),
                    "status": "succeeded",
                    "params": {"model": model, "learning_rate": lr, "random_crop": crop},
                    "test_accuracy": 50.0, "train_accuracy": 60.0,
                }));
            }
        }
    }
    let r = results(json!({
        "format": 1, "sweep": "lab2", "finished": true,
        "experiments": [{"name": "cnn", "dataset": "cifar10",
            "table": {"rows": "random_crop", "columns": "learning_rate"},
            "axes": [{"param": "model", "values": &LAB2[..2]},
                     {"param": "learning_rate", "values": ["0.1", "0.01"]},
                     {"param": "random_crop", "values": ["0", "4"]}]}],
        "trials": trials,
    }));
    let v = &analysis::views(&r)[0];
    let captions: Vec<String> = tables::pivot_slices(v, Metric::Test)
        .into_iter()
        .map(|(caption, _)| caption)
        .collect();
    assert_eq!(
        captions,
        [
            "Model 2 conv 32-64, 1 linear 10; bn, max pool, avg pool, 20234 params",
            "Model 2 conv 64-128, 1 linear 10; bn, max pool, avg pool, 77322 params",
        ]
    );
}
