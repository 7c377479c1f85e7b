//! `results.json` read and written through its one model: documents of every version read, and
//! a written record is the file's bytes.

use super::*;
use crate::FailureKind;
use crate::grid::Activation;

/// A trial as the first versions wrote it: no `weights`, a diverged epoch's loss as `null`.
const OLD_TRIAL: &str = r#"{"id":"00000000-0000-5000-8000-000000000001","experiment":"p1","name":"t1","dataset":"cifar10","params":{"activation":"relu","hidden_layers":1,"hidden_width":1024,"learning_rate":0.001,"batch_size":128,"epochs":3,"train_fraction":1.0,"seed":0},"split":{"train_ratio":0.7,"seed":0},"status":"failed","attempts":1,"worker":null,"wall_seconds":null,"train_seconds":null,"epochs":[{"epoch":1,"train_loss":2.1,"train_accuracy":20.0,"test_accuracy":21.5,"seconds":1.5},{"epoch":2,"train_loss":null,"train_accuracy":10.0,"test_accuracy":10.0,"seconds":1.25}],"train_accuracy":null,"test_accuracy":null,"train_confusion":null,"test_confusion":null,"dataset_images":null,"failure":"loss became nan at epoch 2","failed_attempts":[{"attempt":1,"worker":"33333333-3333-4333-8333-333333333333","kind":"non_finite_loss","message":"loss became nan at epoch 2"}]}"#;

/// `results.json` as the first versions wrote it: no `table`, and fields this version does not
/// know (a later version's) beside the ones it does.
fn old_document() -> String {
    format!(
        r#"{{"format":1,"sweep":"s","grid_file":"g.toml","finished":true,"future_field":{{"x":1}},
            "experiments":[{{"name":"p1","title":null,"dataset":"cifar10","classes":["airplane"],
            "axes":[{{"param":"activation","values":["ReLU","Tanh"]}},
                    {{"param":"learning_rate","values":["0.001","0.1"]}}]}}],
            "trials":[{OLD_TRIAL}]}}"#
    )
}

#[test]
fn a_document_of_the_first_version_reads() {
    let r: Results<'static> = serde_json::from_str(&old_document()).expect("an old document");
    assert_eq!(r.format, 1);
    let e = &r.experiments[0];
    assert_eq!(e.table, None);
    assert_eq!(e.dataset, DatasetKind::Cifar10);
    let t = &r.trials[0];
    assert_eq!(t.status, Status::Failed);
    assert!(t.failed() && !t.succeeded());
    assert_eq!(t.weights, None);
    assert_eq!(t.params.activation, Activation::Relu);
    assert!(t.epochs[1].train_loss.is_nan(), "null reads back as NaN");
    assert_eq!(t.failed_attempts[0].kind, FailureKind::NonFiniteLoss);
    assert_eq!(t.gap(), None);
}

#[test]
fn a_written_record_has_the_files_keys_in_the_files_order() {
    let r: Results<'static> = serde_json::from_str(&old_document()).expect("an old document");
    let written = serde_json::to_string(&r.trials[0]).expect("serializes");
    // The same bytes, with the field the first version did not write (`weights`) before
    // `failure`, where every version since writes it.
    // Every hyperparameter is written, those added since at their defaults (`model`).
    let expected = OLD_TRIAL
        .replace(
            r#""dataset_images":null,"#,
            r#""dataset_images":null,"weights":null,"#,
        )
        .replacen(
            r#""seed":0}"#,
            concat!(
                r#""seed":0,"model":"mlp","optimizer":"adam","momentum":0.9,"weight_decay":0.0,"#,
                r#""lr_schedule":"constant","lr_schedule_unit":"epoch","lr_warmup":0,"#,
                r#""lr_step_size":10,"lr_gamma":0.1,"label_smoothing":0.0,"clip_grad_norm":0.0,"#,
                r#""random_crop":0,"random_flip":0.0,"normalize":"none"}"#,
            ),
            1,
        );
    assert_eq!(written, expected);
    let experiment = serde_json::to_string(&r.experiments[0]).expect("serializes");
    assert_eq!(
        experiment,
        r#"{"name":"p1","title":null,"dataset":"cifar10","classes":["airplane"],"axes":[{"param":"activation","values":["ReLU","Tanh"]},{"param":"learning_rate","values":["0.001","0.1"]}],"table":null}"#
    );
}

#[test]
fn axis_values_read_back_as_the_values_they_show() {
    let r: Results<'static> = serde_json::from_str(&old_document()).expect("an old document");
    let axes = &r.experiments[0].axes;
    assert_eq!(
        axes[0].typed_values(),
        [
            Some(Value::Choice(Activation::Relu.choice())),
            Some(Value::Choice(Activation::Tanh.choice()))
        ]
    );
    assert_eq!(
        axes[1].typed_values(),
        [Some(Value::Float(0.001)), Some(Value::Float(0.1))]
    );
    // Every value of every domain shows as a text that reads back to it.
    for p in Param::ALL {
        let v = p.def().default.value(7);
        assert_eq!(shown_value(p, &v.display()), Some(v), "{p}");
    }
    assert_eq!(
        shown_value(Param::Activation, "relu"),
        None,
        "shown, not named"
    );
    assert_eq!(shown_value(Param::HiddenLayers, "01"), None, "not as shown");
    assert_eq!(shown_value(Param::LearningRate, "x"), None);
}

#[test]
fn a_newer_or_broken_document_is_an_error_not_a_panic() {
    for text in [
        "{",
        r#"{"trials":[{"id":"x"}]}"#,
        r#"{"experiments":[{"name":"e","dataset":"svhn"}]}"#,
    ] {
        assert!(
            serde_json::from_str::<Results<'static>>(text).is_err(),
            "{text}"
        );
    }
    let empty: Results<'static> = serde_json::from_str("{}").expect("an empty document");
    assert_eq!(empty.format, FORMAT);
    assert!(empty.trials.is_empty());
}
