//! The event files' framing and contents, decoded back with prost (TensorBoard's own reader is
//! in `tests/tests/tensorboard_files.rs`).

use super::*;

/// Splits TFRecord framing, checking both CRCs.
fn unframe(mut bytes: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_at(8);
        let (crc, rest) = rest.split_at(4);
        assert_eq!(crc, masked_crc(len).to_le_bytes());
        let n = usize::try_from(u64::from_le_bytes(len.try_into().unwrap())).unwrap();
        let (data, rest) = rest.split_at(n);
        let (crc, rest) = rest.split_at(4);
        assert_eq!(crc, masked_crc(data).to_le_bytes());
        events.push(Event::decode(data).unwrap());
        bytes = rest;
    }
    events
}

#[test]
fn crc32c_is_castagnolis_and_masked_as_tfrecord_masks() {
    // CRC-32C's check value, then what TensorBoard's reader computes for the same bytes
    // (`tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c(b"123456789")`).
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
}

#[test]
fn run_names_are_one_path_component() {
    assert_eq!(run_name("P2_0.5_seed_1"), "P2_0.5_seed_1");
    assert_eq!(run_name("a/b\\c d"), "a_b_c_d");
    assert_eq!(run_name(".."), "_..");
    assert_eq!(run_name(""), "_");
}

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";

fn results() -> Results<'static> {
    let trial = |id: &str, name: &str, status: &str, epochs: serde_json::Value| {
        serde_json::json!({
            "id": id, "experiment": "e", "name": name, "dataset": "fashion-mnist",
            "params": {"activation": "relu", "hidden_layers": 2, "hidden_width": 1024,
                       "learning_rate": 0.01, "batch_size": 128, "epochs": 2,
                       "train_fraction": 1.0, "seed": 0},
            "split": {"train_ratio": 0.7, "seed": 0},
            "status": status, "attempts": 1, "epochs": epochs,
        })
    };
    let epochs = serde_json::json!([
        {"epoch": 1, "train_loss": 1.5, "train_accuracy": 50.0, "test_accuracy": 55.0, "seconds": 2.0},
        {"epoch": 2, "train_loss": 0.5, "train_accuracy": 80.0, "test_accuracy": 75.0, "seconds": 3.0},
    ]);
    let doc = serde_json::json!({
        "format": sweep_common::results::FORMAT, "sweep": "s", "grid_file": "g.toml",
        "finished": true, "experiments": [],
        "trials": [
            trial(A, "t/1", "succeeded", epochs),
            trial(B, "t_1", "pending", serde_json::json!([])),
        ],
    });
    serde_json::from_value(doc).unwrap()
}

#[test]
fn each_trial_has_its_curves_and_hyperparameters() {
    let files = render(&results());
    let paths: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(paths[0], Path::new(EVENT_FILE));
    assert_eq!(paths[1], Path::new("t_1").join(EVENT_FILE));
    // The second trial's name sanitizes to the same folder: its id tells them apart.
    assert_eq!(paths[2], Path::new(&format!("t_1_{B}")).join(EVENT_FILE));

    let events = unframe(&files[1].bytes);
    assert_eq!(
        events[0].what,
        Some(What::FileVersion("brain.Event:2".to_owned()))
    );
    let scalars: Vec<(i64, f64, String, f32)> = events
        .iter()
        .filter_map(|e| match &e.what {
            Some(What::Summary(s)) => Some((e, s)),
            _ => None,
        })
        .flat_map(|(e, s)| {
            s.value.iter().filter_map(move |v| {
                v.simple_value
                    .map(|x| (e.step, e.wall_time, v.tag.clone(), x))
            })
        })
        .collect();
    assert_eq!(scalars.len(), 6);
    assert_eq!(scalars[0], (1, 2.0, "train_loss".to_owned(), 1.5));
    assert_eq!(scalars[5], (2, 5.0, "test_accuracy".to_owned(), 75.0));

    let plugin = |e: &Event| match &e.what {
        Some(What::Summary(s)) => {
            let data = &s.value[0]
                .metadata
                .as_ref()
                .unwrap()
                .plugin_data
                .as_ref()
                .unwrap();
            assert_eq!(data.plugin_name, "hparams");
            HParamsPluginData::decode(data.content.as_slice())
                .unwrap()
                .data
        }
        other => panic!("{other:?}"),
    };
    let Some(HParamsData::SessionStartInfo(start)) = plugin(&events[1]) else {
        panic!("no session start");
    };
    assert_eq!(
        start.hparams["activation"].kind,
        Some(Kind::StringValue("relu".to_owned()))
    );
    assert_eq!(
        start.hparams["learning_rate"].kind,
        Some(Kind::NumberValue(0.01))
    );
    let Some(HParamsData::SessionEndInfo(end)) = plugin(events.last().unwrap()) else {
        panic!("no session end");
    };
    assert_eq!(end.status, wire::STATUS_SUCCESS);
    // A pending trial has started no session's end.
    assert_eq!(unframe(&files[2].bytes).len(), 2);

    let Some(HParamsData::Experiment(x)) = plugin(&unframe(&files[0].bytes)[1]) else {
        panic!("no experiment");
    };
    assert!(x.hparam_infos.iter().any(|h| h.name == "learning_rate"));
    let tags: Vec<_> = x
        .metric_infos
        .iter()
        .map(|m| m.name.clone().unwrap().tag)
        .collect();
    assert_eq!(tags, ["train_loss", "train_accuracy", "test_accuracy"]);
}

#[test]
fn the_same_results_give_the_same_bytes() {
    assert_eq!(render(&results()), render(&results()));
}

#[test]
fn past_the_first_runs_trials_get_none_but_count_in_the_domains() {
    let mut r = results();
    let first = r.trials[0].clone();
    r.trials = (0..MAX_RUNS + 1)
        .map(|i| {
            let mut t = first.clone();
            t.name = format!("t{i}").into();
            let mut params = t.params.into_owned();
            params.seed = i as u64;
            t.params = std::borrow::Cow::Owned(params);
            t
        })
        .collect();
    let files = render(&r);
    assert_eq!(files.len(), 1 + MAX_RUNS);
    assert_eq!(
        files[MAX_RUNS].path,
        Path::new(&format!("t{}", MAX_RUNS - 1)).join(EVENT_FILE)
    );
    // The last trial's seed is in the experiment's domain.
    let root = files[0].bytes.clone();
    r.trials.pop();
    assert_ne!(render(&r)[0].bytes, root);
}
