//! A program trial's own scalars (issue 19, part 5): a column and a curve per name, the first
//! few names only, and nothing added for trials without any (native trials).

use serde_json::json;

use super::super::analysis::{self, MAX_SCALAR_NAMES};
use super::super::doc::{self, Block};
use super::super::figures::Plot;
use super::super::tables;
use super::one_trial_per;

/// Two trials over 2 epochs, each epoch with `names` scalars (value: epoch + index / 10).
fn trials(names: &[String]) -> sweep_common::results::Results<'static> {
    let trials: Vec<serde_json::Value> = (0..2)
        .map(|i| {
            let epochs: Vec<serde_json::Value> = (1..=2)
                .map(|e| {
                    let scalars: serde_json::Map<String, serde_json::Value> = names
                        .iter()
                        .map(|n| (n.clone(), json!(e as f64 + i as f64 / 10.0)))
                        .collect();
                    let mut epoch =
                        json!({"epoch": e, "test_accuracy": 50.0 + e as f64, "train_loss": 1.0});
                    if !scalars.is_empty() {
                        epoch["scalars"] = serde_json::Value::Object(scalars);
                    }
                    epoch
                })
                .collect();
            let lr = [0.1, 0.2][i];
            json!({"experiment": "e", "name": format!("t{i}"), "status": "succeeded",
                   "params": {"learning_rate": lr}, "test_accuracy": 52.0,
                   "epochs": epochs})
        })
        .collect();
    one_trial_per(
        json!([{"param": "learning_rate", "values": ["0.1", "0.2"]}]),
        &trials,
    )
}

fn curve_titles(d: &doc::Document) -> Vec<String> {
    d.figures
        .iter()
        .filter_map(|(_, p)| match p {
            Plot::Curves(c) => Some(c.y_label.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn each_scalar_name_gets_a_column_and_a_curve() {
    let names = ["val_loss".to_owned(), "f1".to_owned()];
    let r = trials(&names);
    let view = &analysis::views(&r)[0];
    let t = tables::trials(&view.trials);
    let base = tables::trials(&analysis::views(&trials(&[]))[0].trials);
    assert_eq!(t.header.len(), base.header.len() + 2);
    assert_eq!(
        t.header[base.header.len()..],
        ["f1 (last)", "val_loss (last)"]
    );
    // The last epoch's values, right-aligned.
    assert_eq!(t.rows[1][base.header.len()..], ["2.1000", "2.1000"]);
    assert!(t.is_numeric(base.header.len()));
    let d = doc::build(&r);
    assert_eq!(
        curve_titles(&d),
        ["Test accuracy (%)", "Training loss", "f1", "val_loss"]
            .map(str::to_owned)
            .to_vec()
    );
    let Some((_, Plot::Curves(f1))) = d.figures.iter().find(|(s, _)| s == "e-scalar-f1") else {
        panic!(
            "no figure e-scalar-f1: {:?}",
            d.figures.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
    };
    assert_eq!(f1.series.len(), 2, "a line per configuration");
    assert_eq!(f1.series[0].points.len(), 2);
    let svg = Plot::Curves(f1.clone()).svg().expect("it draws");
    assert!(svg.contains("f1"));
}

#[test]
fn only_the_first_names_are_shown_and_the_rest_are_counted() {
    let names: Vec<String> = (0..MAX_SCALAR_NAMES + 3)
        .map(|i| format!("m{i:02}"))
        .collect();
    let r = trials(&names);
    let view = &analysis::views(&r)[0];
    let (shown, all) = analysis::scalar_names(&view.trials);
    assert_eq!(shown, names[..MAX_SCALAR_NAMES]);
    assert_eq!(all, MAX_SCALAR_NAMES + 3);
    let d = doc::build(&r);
    assert_eq!(curve_titles(&d).len(), 2 + MAX_SCALAR_NAMES);
    let said = d.blocks.iter().any(|b| {
        matches!(b, Block::Paragraph(spans) if format!("{spans:?}")
            .contains("the first 8 of 11 scalar names"))
    });
    assert!(said, "the report says that names were left out");
}

#[test]
fn trials_without_scalars_get_the_report_they_had() {
    let r = trials(&[]);
    let d = doc::build(&r);
    assert_eq!(curve_titles(&d), ["Test accuracy (%)", "Training loss"]);
    let t = tables::trials(&analysis::views(&r)[0].trials);
    assert_eq!(t.header.last().map(String::as_str), Some("Worker"));
    assert!(!t.is_numeric(t.header.len() - 1));
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains("scalars"), "not written when there are none");
}
