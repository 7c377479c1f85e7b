//! Final weights load into PyTorch (issue 18): a small CNN with batch norm and dropout trains on
//! an own `.npz`, and `bench/weights_accuracy.py` loads its `models/*.safetensors` into the
//! module `bench/model_spec.py` builds from the same spec; the accuracy PyTorch measures on the
//! held-out images (the file's x_test, normalised per channel as the worker does for
//! `normalize = "dataset"`) is the trial's reported test accuracy.
//!
//! Needs a Python with torch (`sweep_tests::python::torch_python`: the project's venv that
//! `scripts/setup` installs, then `python3` on the PATH). Skipped with a message when there is
//! none; fails when `$SWEEP_TORCH_VENV` is set and cannot import torch.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sweep_data::fixtures::{OwnNpz, write_own_npz};
use sweep_tests::python::{NO_TORCH, torch_python};
use sweep_tests::{Sweep, Worker};

const GRID: &str = r#"
[sweep]
name = "weights"
seed = 4

[[experiment]]
name = "cnn"
dataset = "own.npz"
trial_name = "cnn_{normalize}"

[experiment.fixed]
batch_size = 16
epochs = 2
learning_rate = 0.01
model = "conv(6,3,p=1) bn relu maxpool(2) conv(8,3) bn relu flatten dropout(0.3) linear(12) relu linear(3)"

[experiment.grid]
normalize = ["none", "dataset"]
"#;

#[test]
fn final_weights_give_the_reported_accuracy_in_pytorch() {
    let Some(python) = torch_python() else {
        eprintln!("{NO_TORCH}");
        return;
    };
    let sweep = Sweep::new(GRID);
    let npz = sweep.path().join("own.npz");
    let spec = OwnNpz {
        hwc: [10, 10, 3],
        classes: 3,
        train: 150,
        test: 60,
        class_names: Some(vec!["a".into(), "bb".into(), "ccc".into()]),
        seed: 8,
    };
    write_own_npz(&npz, &spec).expect("write the .npz");
    let mut c = sweep.start_coordinator(&[]);
    let empty = sweep.mkdir("data");
    let mut w = Worker::start("W", &c, &empty, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/weights_accuracy.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(sweep.out())
        .arg(&npz)
        .output()
        .expect("run the python check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for l in &lines {
        let (pytorch, sweep) = (l["pytorch"].as_f64(), l["sweep"].as_f64());
        let (Some(pytorch), Some(sweep)) = (pytorch, sweep) else {
            panic!("{l}");
        };
        assert_eq!(l["images"], 60, "{l}");
        // The same images through the same libtorch: the same predictions.
        assert!((pytorch - sweep).abs() < 1e-6, "{l}");
        assert!(sweep > 40.0, "learned something: {l}");
    }
}
