//! Tests of the trainer on small fixture datasets in the official formats.

use std::sync::atomic::AtomicBool;

use sweep_common::grid::Grid;
use sweep_common::{EpochMetrics, TrialSpec};
use sweep_data::fixtures;
use tch::Device;

use super::*;
use crate::data_cache::DeviceData;

/// The first trial of a one-experiment grid: width 32, batch 16, 3 epochs unless `extra`
/// (lines of `[experiment.fixed]`) says otherwise.
fn spec(dataset: &str, extra: &str) -> TrialSpec {
    let mut fixed: Vec<String> = extra.lines().map(str::to_owned).collect();
    for default in ["hidden_width=32", "batch_size=16", "epochs=3"] {
        let key = default.split('=').next().unwrap_or_default();
        if !fixed.iter().any(|l| l.starts_with(&format!("{key}="))) {
            fixed.push(default.to_owned());
        }
    }
    let text = format!(
        "[sweep]\nname='t'\nseed=3\n[[experiment]]\nname='e'\ndataset='{dataset}'\n[experiment.fixed]\n{}\n",
        fixed.join("\n")
    );
    Grid::parse(&text, "t.toml")
        .unwrap()
        .trials()
        .next()
        .unwrap()
        .clone()
}

fn fashion(n: usize) -> (tempfile::TempDir, DeviceData) {
    let dir = tempfile::tempdir().unwrap();
    fixtures::write_fashion_mnist(dir.path(), n, 7).unwrap();
    let data = DeviceData::load(
        sweep_common::DatasetKind::FashionMnist,
        dir.path(),
        Device::Cpu,
    )
    .unwrap();
    (dir, data)
}

/// Records what the trainer reports.
#[derive(Default)]
struct Record {
    epochs: Vec<EpochMetrics>,
    checkpoints: Vec<(u32, Vec<u8>)>,
}

impl Progress for Record {
    fn epoch(&mut self, metrics: &EpochMetrics) {
        self.epochs.push(metrics.clone());
    }
    fn checkpoint(&mut self, epoch: u32, bytes: Vec<u8>) {
        self.checkpoints.push((epoch, bytes));
    }
}

fn run(spec: &TrialSpec, data: &DeviceData) -> (TrialResult, Vec<EpochMetrics>) {
    let mut rec = Record::default();
    let r = train(spec, data, &mut rec, &Control::default(), None).unwrap();
    (r.result, rec.epochs)
}

#[test]
fn trains_learnable_data_and_reports_every_epoch() {
    let (_dir, data) = fashion(600);
    let s = spec("fashion-mnist", "");
    let (r, seen) = run(&s, &data);
    assert_eq!(seen, r.epochs);
    assert_eq!(
        r.epochs.iter().map(|m| m.epoch).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(r.last.dataset_images, 600);
    // 70:30 split of 600.
    assert_eq!(r.last.test_confusion.total(), 180);
    assert_eq!(r.last.train_confusion.total(), 420);
    assert!(
        r.last.test_accuracy > 60.0,
        "fixture data is learnable: {}",
        r.last.test_accuracy
    );
    assert!(r.epochs.iter().all(|m| m.train_loss.is_finite()));
    assert!((r.last.test_accuracy - r.epochs[2].test_accuracy).abs() < 1e-9);
}

#[test]
fn same_seed_gives_identical_numbers_on_cpu() {
    let (_dir, data) = fashion(400);
    let s = spec(
        "fashion-mnist",
        "activation='tanh'\nhidden_layers=2\ntrain_fraction=0.5",
    );
    let (a, _) = run(&s, &data);
    let (b, _) = run(&s, &data);
    assert_eq!(
        a.epochs.iter().map(|m| m.train_loss).collect::<Vec<_>>(),
        b.epochs.iter().map(|m| m.train_loss).collect::<Vec<_>>()
    );
    assert_eq!(a.last.test_confusion, b.last.test_confusion);
    assert_eq!(a.last.train_confusion, b.last.train_confusion);
    // train_fraction 0.5 of the 280-image train part.
    assert_eq!(a.last.train_confusion.total(), 140);
    let other = spec(
        "fashion-mnist",
        "activation='tanh'\nhidden_layers=2\ntrain_fraction=0.5\nseed=4",
    );
    let (c, _) = run(&other, &data);
    assert_ne!(a.epochs[0].train_loss, c.epochs[0].train_loss);
}

#[test]
fn stop_flag_stops_training() {
    let (_dir, data) = fashion(200);
    let s = spec("fashion-mnist", "");
    let e = train(
        &s,
        &data,
        &mut Record::default(),
        &Control {
            stop: AtomicBool::new(true),
            ..Control::default()
        },
        None,
    )
    .err()
    .unwrap();
    assert!(matches!(e, TrainError::Stopped { epoch: 1 }), "{e}");
}

/// A trial interrupted after a checkpoint and resumed from it (in a new trainer, as another
/// worker would) ends with exactly the numbers of an uninterrupted run.
#[test]
fn resumed_run_equals_uninterrupted_run() {
    let (_dir, data) = fashion(500);
    let s = spec(
        "fashion-mnist",
        "epochs=5\nactivation='sigmoid'\nhidden_layers=2\ntrain_fraction=0.8",
    );
    let mut s = s;
    s.checkpoint_every = 2;
    let mut rec = Record::default();
    let full = train(&s, &data, &mut rec, &Control::default(), None).unwrap();
    // Checkpoints after epochs 2 and 4 (none after the last epoch).
    assert_eq!(
        rec.checkpoints.iter().map(|c| c.0).collect::<Vec<_>>(),
        [2, 4]
    );
    for (epoch, bytes) in &rec.checkpoints {
        let mut resumed_rec = Record::default();
        let resumed = train(
            &s,
            &data,
            &mut resumed_rec,
            &Control::default(),
            Some(bytes),
        )
        .unwrap();
        // Only the epochs after the checkpoint are trained again.
        assert_eq!(resumed_rec.epochs.len(), 5 - *epoch as usize);
        let strip = |r: &TrialResult| r.epochs.iter().map(EpochMetrics::bits).collect::<Vec<_>>();
        assert_eq!(
            strip(&resumed.result),
            strip(&full.result),
            "resumed after epoch {epoch}"
        );
        assert_eq!(
            resumed.result.last.test_confusion,
            full.result.last.test_confusion
        );
        assert_eq!(
            resumed.result.last.train_confusion,
            full.result.last.train_confusion
        );
        // Same weights, bit for bit, and the same file, byte for byte.
        assert!(
            resumed.weights == full.weights,
            "the weights files differ after resuming at epoch {epoch}"
        );
        let a = checkpoint::decode(&resumed.weights).unwrap().tensors;
        let b = checkpoint::decode(&full.weights).unwrap().tensors;
        assert_eq!(a.len(), 6);
        for (name, t) in &a {
            assert!(
                t.equal(&b[name]),
                "weights {name} differ after resuming at epoch {epoch}"
            );
        }
    }
}

/// Draining stops after the epoch in progress with a checkpoint of it, whatever
/// `checkpoint_every` says; resuming from that checkpoint ends as an uninterrupted run does.
#[test]
fn drain_checkpoints_the_epoch_and_resumes_exactly() {
    let (_dir, data) = fashion(300);
    let mut s = spec("fashion-mnist", "epochs=3");
    s.checkpoint_every = 0;
    let full = train(&s, &data, &mut Record::default(), &Control::default(), None).unwrap();
    let draining = Control::default();
    draining
        .drain
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut rec = Record::default();
    let e = train(&s, &data, &mut rec, &draining, None).err().unwrap();
    assert!(matches!(e, TrainError::Drained { epoch: 1 }), "{e}");
    assert_eq!(rec.epochs.len(), 1);
    assert_eq!(rec.checkpoints.len(), 1);
    assert_eq!(rec.checkpoints[0].0, 1);
    let resumed = train(
        &s,
        &data,
        &mut Record::default(),
        &Control::default(),
        Some(&rec.checkpoints[0].1),
    )
    .unwrap();
    assert_eq!(
        resumed.result.last.test_confusion,
        full.result.last.test_confusion
    );
    assert_eq!(
        resumed.result.epochs.last().map(|m| m.train_loss.to_bits()),
        full.result.epochs.last().map(|m| m.train_loss.to_bits())
    );
}

/// An edited grid asking for more epochs: the longer trial resumes the shorter one's checkpoint
/// and ends, bit for bit, where it ends trained from the start; with a schedule that spans
/// the whole run the checkpoint is another trial's and is refused.
#[test]
fn a_checkpoint_continues_the_same_trial_asked_for_more_epochs() {
    let (_dir, data) = fashion(200);
    let step = "lr_schedule='step'\nlr_step_size=1\nlr_gamma=0.5";
    let mut short = spec("fashion-mnist", &format!("epochs=2\n{step}"));
    short.checkpoint_every = 1;
    let mut rec = Record::default();
    train(&short, &data, &mut rec, &Control::default(), None).unwrap();
    assert_eq!(rec.checkpoints.len(), 1);
    let long = spec("fashion-mnist", &format!("epochs=4\n{step}"));
    assert_ne!(long.id, short.id);
    let full = train(
        &long,
        &data,
        &mut Record::default(),
        &Control::default(),
        None,
    )
    .unwrap();
    let mut resumed_rec = Record::default();
    let resumed = train(
        &long,
        &data,
        &mut resumed_rec,
        &Control::default(),
        Some(&rec.checkpoints[0].1),
    )
    .unwrap();
    assert_eq!(resumed_rec.epochs.len(), 3, "epochs 2 to 4 trained");
    let bits = |r: &TrialResult| {
        r.epochs
            .iter()
            .map(|m| (m.epoch, m.train_loss.to_bits(), m.test_accuracy.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&resumed.result), bits(&full.result));
    assert!(resumed.weights == full.weights, "the weights differ");
    let cosine = "lr_schedule='cosine'";
    let mut short = spec("fashion-mnist", &format!("epochs=2\n{cosine}"));
    short.checkpoint_every = 1;
    let mut rec = Record::default();
    train(&short, &data, &mut rec, &Control::default(), None).unwrap();
    let long = spec("fashion-mnist", &format!("epochs=4\n{cosine}"));
    let e = train(
        &long,
        &data,
        &mut Record::default(),
        &Control::default(),
        Some(&rec.checkpoints[0].1),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("checkpoint of trial"), "{e}");
}

#[test]
fn checkpoints_of_other_trials_or_garbage_are_refused() {
    let (_dir, data) = fashion(200);
    let mut s = spec("fashion-mnist", "epochs=2");
    s.checkpoint_every = 1;
    let mut rec = Record::default();
    train(&s, &data, &mut rec, &Control::default(), None).unwrap();
    let other = spec("fashion-mnist", "epochs=2\nseed=99");
    let stop = Control::default();
    let e = train(
        &other,
        &data,
        &mut Record::default(),
        &stop,
        Some(&rec.checkpoints[0].1),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("checkpoint of trial"), "{e}");
    let e = train(&s, &data, &mut Record::default(), &stop, Some(b"garbage"))
        .err()
        .unwrap();
    assert!(matches!(e, TrainError::Resume(_)), "{e}");
    let wider = spec("fashion-mnist", "epochs=2\nhidden_width=33");
    let mut hacked = rec.checkpoints[0].1.clone();
    // Same trial id, different shapes: refused by shape, not accepted.
    let e = Trainer::new(&wider, &data)
        .unwrap()
        .restore(&hacked)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("checkpoint of trial") || e.to_string().contains("shape"),
        "{e}"
    );
    hacked.truncate(hacked.len() / 2);
    assert!(Trainer::new(&s, &data).unwrap().restore(&hacked).is_err());
}

#[test]
fn model_shape_follows_the_spec() {
    let s = spec("cifar10", "hidden_layers=3\nhidden_width=17");
    let vs = nn::VarStore::new(Device::Cpu);
    let m = Mlp::new(&vs.root(), &s).unwrap();
    let shapes: Vec<Vec<i64>> = m.layers.iter().map(|(w, _)| w.size()).collect();
    assert_eq!(
        shapes,
        [vec![17, 3072], vec![17, 17], vec![17, 17], vec![10, 17]]
    );
    let bound = 1.0 / (3072f64).sqrt();
    assert!(m.layers[0].0.abs().max().double_value(&[]) <= bound);
    let out = m
        .forward(&Tensor::zeros([5, 3072], (Kind::Float, Device::Cpu)))
        .unwrap();
    assert_eq!(out.size(), [5, 10]);
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight", "6.bias", "6.weight"
        ]
    );
    assert_eq!(names.len(), 8);
    // Same seed, same weights.
    let vs2 = nn::VarStore::new(Device::Cpu);
    let m2 = Mlp::new(&vs2.root(), &s).unwrap();
    assert!(m.layers[0].0.equal(&m2.layers[0].0));
}

#[test]
fn wrong_dataset_is_invalid() {
    let (_dir, data) = fashion(100);
    let s = spec("cifar10", "");
    assert!(matches!(
        train(&s, &data, &mut Record::default(), &Control::default(), None),
        Err(TrainError::Invalid(_))
    ));
}

/// Epoch time on the real Fashion-MNIST (for eyeballing; asserts nothing about time).
#[test]
#[ignore = "benchmark-style; run with --ignored --nocapture"]
fn real_fashion_epoch_time() {
    crate::device::tune_malloc();
    let data = DeviceData::load(
        sweep_common::DatasetKind::FashionMnist,
        std::path::Path::new("/usr/share/datasets/fashion-mnist"),
        Device::Cpu,
    )
    .unwrap();
    let text = "[sweep]\nname='t'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n[experiment.fixed]\nepochs=2\n";
    let s = Grid::parse(text, "t.toml")
        .unwrap()
        .trials()
        .next()
        .unwrap()
        .clone();
    let (r, _) = run(&s, &data);
    for m in &r.epochs {
        println!(
            "epoch {}: {:.3} s, test {:.2} %",
            m.epoch, m.seconds, m.test_accuracy
        );
    }
}

/// The hand-written backward pass gives autograd's gradients and loss, for every activation,
/// through several layers and none, on a full batch and on a shorter last one, with and without
/// label smoothing.
#[test]
fn manual_gradients_equal_autograd() {
    let (_dir, data) = fashion(40);
    let cases = [
        ("relu", 2, 0.0),
        ("tanh", 2, 0.0),
        ("sigmoid", 2, 0.0),
        ("relu", 0, 0.0),
        ("relu", 2, 0.1),
        ("tanh", 0, 0.3),
    ];
    for (activation, layers, smoothing) in cases {
        let s = spec(
            "fashion-mnist",
            &format!(
                "activation='{activation}'\nhidden_layers={layers}\nhidden_width=12\nbatch_size=8"
            ),
        );
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Mlp::new(&vs.root(), &s).unwrap();
        let mut ws = backprop::Workspace::new(&model, 8, 13, smoothing).unwrap();
        let mut losses = Vec::new();
        for (start, rows) in [(0i64, 8i64), (8, 5)] {
            let idx = Tensor::arange_start(3 * start, 3 * start + rows, (Kind::Int64, Device::Cpu));
            let d = (data.images(), data.labels());
            tch::no_grad(|| ws.step(&model, d, &idx, start, (None, None))).unwrap();

            let x = data.images().index_select(0, &idx).to_kind(Kind::Float) / 255.0;
            let y = data.labels().index_select(0, &idx);
            // Libtorch's own loss (PyTorch's `F.cross_entropy(label_smoothing=)`).
            let loss = model.forward(&x).unwrap().cross_entropy_loss::<Tensor>(
                &y,
                None,
                tch::Reduction::Mean,
                -100,
                smoothing,
            );
            for (_, p) in model.named_parameters() {
                p.shallow_clone().zero_grad();
            }
            loss.backward();
            for (i, (name, p)) in model.named_parameters().into_iter().enumerate() {
                let (want, got) = (p.grad(), &ws.grads[i]);
                assert!(
                    got.allclose(&want, 1e-4, 1e-6, false),
                    "{activation}, rows {rows}, {name}: max difference {}",
                    (got - &want).abs().max().double_value(&[])
                );
                assert!(
                    want.abs().max().double_value(&[]) > 0.0,
                    "{name}: no gradient"
                );
            }
            losses.push(loss.double_value(&[]));
        }
        // The epoch's loss is the mean of the two batches' mean losses.
        let (mean_loss, _) = ws.epoch_measures().unwrap();
        let want = (losses[0] + losses[1]) / 2.0;
        assert!(
            (mean_loss - want).abs() < 1e-5,
            "{activation}: {mean_loss} vs {want}"
        );
    }
}

/// Identical tensors and metadata give identical bytes (the metadata's keys sorted, whatever
/// order the map holds them in), which read back as they were written.
#[test]
fn identical_tensors_give_identical_files() {
    let w = Tensor::from_slice(&[1.0f32, -2.5, 3.25, 0.0]).reshape([2, 2]);
    let b = Tensor::from_slice(&[0.5f32, 7.0]);
    let named = vec![("0.weight".to_owned(), &w), ("0.bias".to_owned(), &b)];
    let meta = || -> std::collections::HashMap<String, String> {
        (0..12)
            .map(|i| (format!("key{i:02}"), format!("value \"{i}\"")))
            .collect()
    };
    let first = checkpoint::encode(&named, meta()).unwrap();
    for _ in 0..20 {
        assert!(checkpoint::encode(&named, meta()).unwrap() == first);
    }
    let header_len = usize::try_from(u64::from_le_bytes(first[..8].try_into().unwrap())).unwrap();
    assert_eq!(header_len % 8, 0, "the data stays 8-byte aligned");
    let header = std::str::from_utf8(&first[8..8 + header_len]).unwrap();
    let keys: Vec<usize> = (0..12)
        .map(|i| header.find(&format!("\"key{i:02}\"")).unwrap())
        .collect();
    assert!(keys.is_sorted(), "metadata keys out of order: {header}");
    let decoded = checkpoint::decode(&first).unwrap();
    assert_eq!(decoded.metadata, meta());
    assert!(decoded.tensors["0.weight"].equal(&w));
    assert!(decoded.tensors["0.bias"].equal(&b));
}

/// `normalize = "dataset"` changes what the model sees (MLP fast path and a net alike), still
/// learns, and is deterministic; the default leaves the numbers as they were (`none`).
#[test]
fn per_channel_normalisation_trains_both_engines_deterministically() {
    let (_dir, data) = fashion(400);
    for model in ["", "model='conv(4,3) gap linear(10)'"] {
        let plain = spec("fashion-mnist", model);
        let explicit = spec("fashion-mnist", &format!("{model}\nnormalize='none'"));
        let normed = spec("fashion-mnist", &format!("{model}\nnormalize='dataset'"));
        assert_eq!(plain.params, explicit.params, "none is the default");
        let losses = |s: &TrialSpec| -> Vec<f64> {
            run(s, &data)
                .0
                .epochs
                .iter()
                .map(|m| m.train_loss)
                .collect()
        };
        let (a, b, c) = (losses(&plain), losses(&normed), losses(&normed));
        assert_eq!(b, c, "deterministic: {model}");
        assert_ne!(a, b, "normalisation changes the inputs: {model}");
        let (b, _) = run(&normed, &data);
        assert!(b.epochs.iter().all(|m| m.train_loss.is_finite()), "{model}");
    }
    let (r, _) = run(&spec("fashion-mnist", "normalize='dataset'"), &data);
    assert!(
        r.last.test_accuracy > 60.0,
        "still learns: {}",
        r.last.test_accuracy
    );
}

#[test]
fn float32_images_train_as_the_same_images_in_uint8() {
    // The same images as float32 in [0, 1] (a user's `.npz` of `x / 255`): both engines, with
    // normalisation and augmentation, give the u8 run's numbers up to rounding (x * (1/255)
    // against x / 255), and the float run is itself deterministic.
    let dir = tempfile::tempdir().unwrap();
    let mut set = fixtures::write_fashion_mnist(dir.path(), 300, 7).unwrap();
    let bytes = DeviceData::from_image_set(&set, Device::Cpu).unwrap();
    set.float_images = Some(set.images.iter().map(|&b| f32::from(b) / 255.0).collect());
    set.images.clear();
    let floats = DeviceData::from_image_set(&set, Device::Cpu).unwrap();
    assert_eq!(floats.images().kind(), Kind::Float);
    for model in [
        "",
        "model='conv(4,3,p=1) bn relu maxpool(2) flatten linear(10)'",
    ] {
        let s = spec(
            "fashion-mnist",
            &format!("{model}\nnormalize='dataset'\nrandom_crop=2\nrandom_flip=0.5\nepochs=2"),
        );
        let (a, _) = run(&s, &bytes);
        let (b, _) = run(&s, &floats);
        let (c, _) = run(&s, &floats);
        let losses =
            |r: &TrialResult| -> Vec<f64> { r.epochs.iter().map(|m| m.train_loss).collect() };
        assert_eq!(losses(&b), losses(&c), "deterministic: {model}");
        assert_eq!(b.last.test_confusion, c.last.test_confusion, "{model}");
        for (x, y) in a.epochs.iter().zip(&b.epochs) {
            assert!(
                (x.train_loss - y.train_loss).abs() < 1e-3,
                "{model}: {x:?} vs {y:?}"
            );
        }
        assert!(
            (a.last.test_accuracy - b.last.test_accuracy).abs() <= 2.0,
            "{model}: {} vs {}",
            a.last.test_accuracy,
            b.last.test_accuracy
        );
    }
}
