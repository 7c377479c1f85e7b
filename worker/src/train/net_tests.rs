//! Tests of models of layers: training, exact resume with batch norm and dropout, the weights'
//! names, dropout's masks.

use sweep_common::grid::Grid;
use sweep_common::metrics::EpochBits;
use sweep_data::fixtures;
use tch::Device;

use super::*;
use crate::data_cache::DeviceData;

/// A small CNN with every kind of layer that holds state or randomness.
const CNN: &str = "conv(4,3,p=1) bn relu maxpool(2) res(8,s=2) dropout(0.3) conv(8,3) avgpool(2) flatten bn dropout(0.2) linear(10)";

fn spec(model: &str, epochs: u32) -> TrialSpec {
    spec_with(model, epochs, "")
}

/// As [`spec`], with more lines of `[experiment.fixed]`.
fn spec_with(model: &str, epochs: u32, extra: &str) -> TrialSpec {
    let text = format!(
        "[sweep]\nname='t'\nseed=3\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
         [experiment.fixed]\nbatch_size=32\nepochs={epochs}\nmodel='{model}'\n{extra}\n"
    );
    let mut s = Grid::parse(&text, "t.toml")
        .unwrap()
        .trials()
        .next()
        .unwrap()
        .clone();
    s.checkpoint_every = 1;
    s
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

fn bits(r: &TrialResult) -> Vec<EpochBits> {
    r.epochs.iter().map(EpochMetrics::bits).collect()
}

#[test]
fn a_cnn_learns_and_resumes_bit_for_bit() {
    let (_dir, data) = fashion(400);
    let s = spec(CNN, 3);
    let mut rec = Record::default();
    let full = train(&s, &data, &mut rec, &Control::default(), None).unwrap();
    assert_eq!(full.result.epochs.len(), 3);
    let first = full.result.epochs[0].train_loss;
    let last = full.result.epochs[2].train_loss;
    assert!(last < first, "the loss went from {first} to {last}");
    assert_eq!(
        rec.checkpoints.iter().map(|c| c.0).collect::<Vec<_>>(),
        [1, 2]
    );
    for (epoch, bytes) in &rec.checkpoints {
        let resumed = train(
            &s,
            &data,
            &mut Record::default(),
            &Control::default(),
            Some(bytes),
        )
        .unwrap();
        assert_eq!(
            bits(&resumed.result),
            bits(&full.result),
            "resumed after {epoch}"
        );
        assert_eq!(
            resumed.result.last.test_confusion,
            full.result.last.test_confusion
        );
        assert!(
            resumed.weights == full.weights,
            "the weights files differ after resuming at epoch {epoch}"
        );
    }
    // The same trial again gives the same numbers: nothing comes from a global generator.
    let again = train(&s, &data, &mut Record::default(), &Control::default(), None).unwrap();
    assert!(again.weights == full.weights);
}

#[test]
fn weights_carry_pytorch_names_with_the_running_statistics() {
    let (_dir, data) = fashion(100);
    let s = spec(CNN, 1);
    let w = train(&s, &data, &mut Record::default(), &Control::default(), None)
        .unwrap()
        .weights;
    let decoded = checkpoint::decode(&w).unwrap();
    let mut names: Vec<&str> = decoded.tensors.keys().map(String::as_str).collect();
    names.sort_unstable();
    for name in [
        "0.weight",
        "0.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "4.conv1.weight",
        "4.bn1.weight",
        "4.bn2.running_var",
        "4.shortcut.0.weight",
        "4.shortcut.1.bias",
        "9.weight",
        "11.weight",
        "11.bias",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // Residual convolutions have no bias, as torchvision's BasicBlock.
    assert!(!names.contains(&"4.conv1.bias"));
    assert_eq!(decoded.tensors["11.weight"].size(), [10, 8 * 2 * 2]);
    assert_eq!(decoded.metadata["model"], s.params.model.to_string());
    // Batch norm counted the batches: 70 training images in batches of 32.
    let count = decoded.tensors["1.num_batches_tracked"].double_value(&[]);
    assert_eq!(count, 3.0);
    // The running mean moved away from its initial zeros.
    assert!(
        decoded.tensors["1.running_mean"]
            .abs()
            .sum(Kind::Float)
            .double_value(&[])
            > 0.0
    );
}

#[test]
fn dropout_keeps_about_one_minus_p_and_depends_on_the_seed() {
    let x = Tensor::ones([100_000], (Kind::Float, Device::Cpu));
    let a = net::keep_mask_for_tests(&x, 0.3, 1).unwrap();
    let b = net::keep_mask_for_tests(&x, 0.3, 1).unwrap();
    let c = net::keep_mask_for_tests(&x, 0.3, 2).unwrap();
    assert!(a.equal(&b));
    assert!(!a.equal(&c));
    let kept = a.sum(Kind::Float).double_value(&[]) / 100_000.0;
    assert!((kept - 0.7).abs() < 0.01, "kept {kept}");
}

/// SGD's momentum buffers are in the checkpoint: a CNN trained with Nesterov momentum and
/// weight decay, and an MLP with AdamW, resume bit for bit.
#[test]
fn every_optimizer_resumes_bit_for_bit() {
    let (_dir, data) = fashion(300);
    for (model, extra) in [
        (
            CNN,
            "optimizer='nesterov'\nmomentum=0.8\nweight_decay=0.001\nlearning_rate=0.02",
        ),
        ("mlp", "optimizer='adamw'\nweight_decay=0.01"),
        ("mlp", "optimizer='sgd'\nlearning_rate=0.05"),
    ] {
        let s = spec_with(model, 2, extra);
        let mut rec = Record::default();
        let full = train(&s, &data, &mut rec, &Control::default(), None).unwrap();
        let last = &full.result.epochs;
        assert!(last[1].train_loss < last[0].train_loss, "{extra}: {last:?}");
        let resumed = train(
            &s,
            &data,
            &mut Record::default(),
            &Control::default(),
            Some(&rec.checkpoints[0].1),
        )
        .unwrap();
        assert_eq!(bits(&resumed.result), bits(&full.result), "{extra}");
        assert!(resumed.weights == full.weights, "{extra}");
        let names = checkpoint::decode(&rec.checkpoints[0].1).unwrap().tensors;
        let sgd = names.keys().any(|n| n.starts_with("sgd.momentum_buffer."));
        assert_eq!(
            sgd,
            extra.contains("sgd") || extra.contains("nesterov"),
            "{extra}"
        );
    }
}

/// The training options (a schedule counted in batches with a warm-up, label smoothing,
/// gradient clipping, augmentation) change the run, and a run resumed from any of its checkpoints continues
/// it bit for bit (the schedule's position included), on both the MLP's hand-written step and
/// the autograd path.
#[test]
fn training_options_resume_bit_for_bit_on_both_paths() {
    let (_dir, data) = fashion(300);
    let options = "lr_schedule='onecycle'\nlr_schedule_unit='batch'\nlr_warmup=3\n\
                   label_smoothing=0.1\nclip_grad_norm=0.5\noptimizer='sgd'\nlearning_rate=0.05\n\
                   random_crop=2\nrandom_flip=0.5";
    for model in [
        "mlp",
        "conv(4,3,p=1) bn relu maxpool(2) flatten dropout(0.2) linear(10)",
    ] {
        let plain = spec_with(model, 3, "optimizer='sgd'\nlearning_rate=0.05");
        let s = spec_with(model, 3, options);
        let mut rec = Record::default();
        let full = train(&s, &data, &mut rec, &Control::default(), None).unwrap();
        let base = train(
            &plain,
            &data,
            &mut Record::default(),
            &Control::default(),
            None,
        )
        .unwrap();
        assert_ne!(bits(&full.result), bits(&base.result), "{model}");
        assert_eq!(rec.checkpoints.len(), 2);
        for (epoch, bytes) in &rec.checkpoints {
            let resumed = train(
                &s,
                &data,
                &mut Record::default(),
                &Control::default(),
                Some(bytes),
            )
            .unwrap();
            assert_eq!(
                bits(&resumed.result),
                bits(&full.result),
                "{model}: resumed after {epoch}"
            );
            assert!(resumed.weights == full.weights, "{model}: after {epoch}");
        }
        // A checkpoint whose schedule position is not this trial's is refused.
        let (_, bytes) = &rec.checkpoints[0];
        let mut decoded = checkpoint::decode(bytes).unwrap();
        decoded
            .metadata
            .insert("lr_position".to_owned(), "5".to_owned());
        let named: Vec<(String, &Tensor)> = decoded
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), t))
            .collect();
        let forged = checkpoint::encode(&named, decoded.metadata.clone()).unwrap();
        let e = train(
            &s,
            &data,
            &mut Record::default(),
            &Control::default(),
            Some(&forged),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("schedule position 5"), "{e}");
    }
}

/// On the CPU a model of layers is evaluated in chunks whose widest activation stays within
/// `EVAL_BYTES_CPU` (memory reused, not mapped and faulted in afresh on every pass); the MLP and
/// other devices keep the large chunk.
#[test]
fn evaluation_chunks_keep_cpu_activations_small() {
    let cnn = spec("conv(16,3,p=1) bn relu maxpool(2) flatten linear(10)", 1);
    // Widest: 16 x 28 x 28 floats = 50 176 bytes an image.
    let chunk = super::eval_chunk(&cnn, Device::Cpu);
    assert_eq!(chunk, (super::EVAL_BYTES_CPU / (4 * 16 * 28 * 28)) as i64);
    assert_eq!(chunk, 668);
    assert_eq!(super::eval_chunk(&cnn, Device::Cuda(0)), super::EVAL_CHUNK);
    assert_eq!(
        super::eval_chunk(&spec("mlp", 1), Device::Cpu),
        super::EVAL_CHUNK
    );
    // A very wide model gets few images a pass.
    let wide = spec("conv(4096,3,p=1) gap linear(10)", 1);
    assert_eq!(super::eval_chunk(&wide, Device::Cpu), 2);
}

#[test]
fn channels_last_changes_no_value_beyond_rounding() {
    // Every layer kind (CNN), training mode (batch statistics, dropout) and evaluation: the
    // logits and every parameter's gradient of the CPU's channels-last layout against
    // PyTorch's default layout, same weights, same batch.
    let s = spec(CNN, 1);
    let x = Tensor::rand([8, 784], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 6, 7]);
    let run = |on: bool, training: bool| -> (Tensor, Vec<Tensor>) {
        let net = Net::new(&s.params.model.spec().unwrap(), s.dataset, 5, Device::Cpu)
            .unwrap()
            .with_channels_last(on);
        let logits = net.forward(&x, training.then_some(9)).unwrap();
        logits.cross_entropy_for_logits(&y).backward();
        let grads = net
            .named_parameters()
            .into_iter()
            .map(|(_, p)| p.grad().copy())
            .collect();
        (logits.detach(), grads)
    };
    for training in [true, false] {
        let (a, ga) = run(true, training);
        let (b, gb) = run(false, training);
        let close = |u: &Tensor, v: &Tensor| {
            let d = f64::try_from((u - v).abs().max()).unwrap();
            let scale = f64::try_from(v.abs().max()).unwrap().max(1.0);
            d <= 1e-4 * scale
        };
        assert!(close(&a, &b), "logits, training {training}");
        for (i, (u, v)) in ga.iter().zip(&gb).enumerate() {
            assert!(close(u, v), "gradient {i}, training {training}");
        }
    }
}
