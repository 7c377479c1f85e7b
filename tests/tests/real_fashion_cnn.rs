//! A small CNN (convolutions, batch norm, pooling, a residual block, dropout) trained for two
//! epochs on a slice of the REAL Fashion-MNIST, through the real coordinator and one worker:
//! it learns, checkpoints, and leaves weights under PyTorch's names with batch norm's running
//! statistics.

use std::time::Duration;

use sweep_tests::TrialExt as _;
use sweep_tests::{Sweep, Worker, real_fashion_mnist_dir};

const GRID: &str = r#"
[sweep]
name = "cnn"
seed = 0

[[experiment]]
name = "cnn"
dataset = "fashion-mnist"
checkpoint_every = 1
trial_name = "tiny_cnn"

[experiment.fixed]
model = "conv(8,3,p=1) bn relu maxpool(2) res(16,s=2) flatten dropout(0.1) linear(10)"
learning_rate = 0.003
batch_size = 64
epochs = 2
train_fraction = 0.05
"#;

#[test]
fn a_small_cnn_learns_real_fashion_mnist() {
    let data = real_fashion_mnist_dir();
    let sweep = Sweep::new(GRID);
    let mut coordinator = sweep.start_coordinator(&[]);
    let mut worker = Worker::start("W", &coordinator, &data, 2);
    coordinator.expect_exit_code(0, Duration::from_secs(400));
    worker.expect_exit_code(0, Duration::from_secs(30));

    let results = sweep.results();
    assert_eq!(results.trials.len(), 1);
    let t = &results.trials[0];
    t.assert_consistent_result();
    assert_eq!(t.attempts, 1);
    assert_eq!(t.epochs.len(), 2);
    assert_eq!(
        t.params.model.0,
        "conv(8,3,p=1) bn relu maxpool(2) res(16,s=2) flatten dropout(0.1) linear(10)"
    );
    // 5 % of the 42 000 training images, evaluated on all 18 000 of the test part.
    let train = t.train_confusion.as_ref().map(|m| m.total());
    let test = t.test_confusion.as_ref().map(|m| m.total());
    assert_eq!((train, test), (Some(2_100), Some(18_000)));
    let accuracy = t.test_accuracy.unwrap_or_default();
    assert!(
        accuracy > 50.0,
        "test accuracy {accuracy:.2} % after two epochs on 2 100 images (chance is 10 %)"
    );

    // The weights: a safetensors file whose header names PyTorch's state-dict keys.
    let weights = sweep.out().join(
        t.weights
            .as_deref()
            .expect("the trial's weights are recorded"),
    );
    let bytes = std::fs::read(&weights)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", weights.display()));
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + len]).expect("a JSON header");
    for key in [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "4.conv1.weight",
        "4.bn2.running_var",
        "4.shortcut.0.weight",
        "7.weight",
        "7.bias",
    ] {
        assert!(header.get(key).is_some(), "{key} missing from {header}");
    }
    assert_eq!(header["7.weight"]["shape"], serde_json::json!([10, 784]));
}
