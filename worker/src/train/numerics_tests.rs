//! Every layer kind and optimiser option of the native trainer against PyTorch's own modules
//! and optimisers (issue 18): for each case of [`cases`], a model built from a spec with a fixed
//! seed on the CPU takes a small fixed batch (4 images, labels 0, 3, 7, 9); its initial tensors,
//! its logits and loss in evaluation and training mode, its gradients and its parameters and
//! buffers after one optimiser step (as the trainer's `net_step` and `Optim::step` compute them)
//! go to a safetensors file, and `bench/numerics_check.py` redoes the same with torch.nn /
//! torch.optim and names every tensor that differs. Each case runs in PyTorch's NCHW layout
//! (tolerance 1e-5 relative plus 1e-5 of the tensor's largest magnitude) and in the
//! channels-last layout the trainer uses on the CPU (1e-3, see [`Layout`]). Lab 1's MLP, whose
//! step is the hand-written one of `backprop.rs`, has cases of its own ([`mlp_cases`]).
//!
//! Dropout is compared in evaluation mode only: its masks are a hash of (seed, position), not
//! torch's generator. Learning-rate schedules have their own tests against PyTorch's values
//! (`schedule.rs`).
//!
//! Needs a Python with torch (`sweep_tests::python::torch_python`: the project's venv that
//! `scripts/setup` installs, then `python3` on the PATH). Skipped with a message when there is
//! none; fails when `$SWEEP_TORCH_VENV` is set and cannot import torch.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use sweep_common::model::ModelSpec;
use sweep_common::{DatasetKind, HyperParams};
use sweep_tests::python::{NO_TORCH, torch_python};
use tch::{Device, Kind, Reduction, Tensor};

use super::adam::Adam;
use super::backprop::Workspace;
use super::checkpoint;
use super::model::Mlp;
use super::net::Net;
use super::optim::Optim;

/// One comparison: a model, a dataset (for the image shape) and the optimiser's options.
struct Case {
    name: &'static str,
    spec: &'static str,
    dataset: DatasetKind,
    optimizer: &'static str,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    label_smoothing: f64,
    clip_grad_norm: f64,
}

/// The optimiser cases' model: a biased convolution (not followed directly by batch norm,
/// whose mean subtraction leaves the bias a gradient of rounding noise, which Adam's first
/// step, about lr sign(g), would amplify), batch norm, pooling, a linear layer.
const SMALL: &str = "conv(3,3,p=1) relu bn maxpool(4) flatten linear(10)";

const fn case(name: &'static str, spec: &'static str, dataset: DatasetKind) -> Case {
    Case {
        name,
        spec,
        dataset,
        optimizer: "sgd",
        lr: 0.05,
        momentum: 0.0,
        weight_decay: 0.0,
        label_smoothing: 0.0,
        clip_grad_norm: 0.0,
    }
}

const FASHION: DatasetKind = DatasetKind::FashionMnist;
const CIFAR: DatasetKind = DatasetKind::Cifar10;

/// Layer kinds (with plain SGD, whose step is the gradient itself) and optimiser options.
fn cases() -> Vec<Case> {
    let mut all = layer_cases();
    all.extend(optimiser_cases());
    all
}

/// Every layer kind and activation, with plain SGD.
fn layer_cases() -> Vec<Case> {
    vec![
        case(
            "conv_stride_padding_relu_tanh",
            "conv(3,5,s=2,p=2) relu conv(4,3,s=3) tanh flatten linear(10)",
            FASHION,
        ),
        case(
            "conv_bn_sigmoid_maxpool_avgpool",
            "conv(4,3,p=1) bn sigmoid maxpool(2) avgpool(3,s=2) conv(4,1) flatten linear(10)",
            CIFAR,
        ),
        case(
            "maxpool_strided_gap",
            "conv(4,3) relu maxpool(3,s=2) gap linear(10)",
            FASHION,
        ),
        case("gmp_bn1d", "conv(4,3,s=2) tanh gmp bn linear(10)", CIFAR),
        case(
            "residual_identity_and_projection",
            "conv(4,3,p=1) res(4) res(6,s=2) res(6) gap linear(10)",
            CIFAR,
        ),
        case(
            "flatten_linear_bn1d_sigmoid",
            "flatten linear(16) bn sigmoid linear(12) relu linear(10)",
            FASHION,
        ),
        case(
            "dropout_eval_only",
            "conv(3,3,p=1) relu dropout(0.5) flatten linear(10)",
            FASHION,
        ),
    ]
}

/// Every optimiser and its options, on [`SMALL`] (and Adam on residual blocks).
fn optimiser_cases() -> Vec<Case> {
    vec![
        Case {
            optimizer: "adam",
            lr: 0.01,
            ..case("adam", SMALL, FASHION)
        },
        Case {
            optimizer: "adam",
            lr: 0.01,
            weight_decay: 0.1,
            ..case("adam_weight_decay", SMALL, FASHION)
        },
        Case {
            optimizer: "adamw",
            lr: 0.01,
            weight_decay: 0.1,
            ..case("adamw_weight_decay", SMALL, FASHION)
        },
        Case {
            optimizer: "adam",
            lr: 0.01,
            ..case(
                "adam_residual",
                "conv(4,3,p=1) res(6,s=2) gap linear(10)",
                CIFAR,
            )
        },
        Case {
            momentum: 0.9,
            weight_decay: 0.01,
            ..case("sgd_momentum_weight_decay", SMALL, FASHION)
        },
        Case {
            optimizer: "nesterov",
            momentum: 0.9,
            weight_decay: 0.01,
            ..case("nesterov_weight_decay", SMALL, FASHION)
        },
        Case {
            label_smoothing: 0.1,
            ..case("label_smoothing", SMALL, FASHION)
        },
        Case {
            optimizer: "adam",
            lr: 0.01,
            label_smoothing: 0.2,
            ..case("label_smoothing_adam", SMALL, CIFAR)
        },
        Case {
            clip_grad_norm: 0.05,
            ..case("clip_grad_norm_sgd", SMALL, FASHION)
        },
        Case {
            optimizer: "adamw",
            lr: 0.01,
            weight_decay: 0.05,
            clip_grad_norm: 0.05,
            ..case("clip_grad_norm_adamw", SMALL, CIFAR)
        },
    ]
}

/// The batch: 4 images with values in [0, 1) drawn from a fixed seed, and labels 0, 3, 7, 9.
fn batch(dataset: DatasetKind) -> (Tensor, Tensor) {
    let n = 4 * dataset.input_len();
    let mut rng = sweep_common::rng::SplitMix64::for_stream(11, "numerics", 0);
    let x: Vec<f32> = (0..n)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
        .collect();
    let x = Tensor::from_slice(&x).reshape([4, dataset.input_len() as i64]);
    (x, Tensor::from_slice(&[0i64, 3, 7, 9]))
}

/// What our trainer computes for `c`, as named tensors (see `bench/numerics_check.py`).
fn ours(c: &Case, channels_last: bool) -> Vec<(String, Tensor)> {
    let spec: ModelSpec = c.spec.parse().unwrap();
    let net = Net::new(&spec, c.dataset, 5, Device::Cpu)
        .unwrap()
        .with_channels_last(channels_last);
    let (x, y) = batch(c.dataset);
    let mut out: Vec<(String, Tensor)> =
        vec![("x".into(), x.copy()), ("y".into(), y.to_kind(Kind::Float))];
    let state = |net: &Net, prefix: &str| -> Vec<(String, Tensor)> {
        let mut all = net.named_parameters();
        all.extend(net.named_buffers());
        all.into_iter()
            .map(|(n, t)| (format!("{prefix}{n}"), t.detach().copy()))
            .collect()
    };
    out.extend(state(&net, "init."));
    let loss = |logits: &Tensor| {
        logits.cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, c.label_smoothing)
    };
    tch::no_grad(|| {
        let logits = net.forward(&x, None).unwrap();
        out.push(("eval.loss".into(), loss(&logits)));
        out.push(("eval.logits".into(), logits));
    });
    if c.spec.contains("dropout") {
        return out;
    }
    let logits = net.forward(&x, Some(1)).unwrap();
    let l = loss(&logits);
    l.backward();
    out.push(("train.logits".into(), logits.detach()));
    out.push(("train.loss".into(), l.detach()));
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    let mut params: Vec<Tensor> = net
        .named_parameters()
        .into_iter()
        .map(|(_, t)| t.shallow_clone())
        .collect();
    let grads: Vec<Tensor> = params.iter().map(Tensor::grad).collect();
    for (n, g) in names.iter().zip(&grads) {
        out.push((format!("grad.{n}"), g.copy()));
    }
    one_step(c, &mut params, &grads);
    out.extend(state(&net, "step."));
    out
}

/// One step of `c`'s optimiser, as the trainer takes it.
fn one_step(c: &Case, params: &mut [Tensor], grads: &[Tensor]) {
    let mut p = HyperParams::defaults(0).unwrap();
    p.optimizer = c.optimizer.parse().unwrap();
    p.learning_rate = c.lr;
    p.momentum = c.momentum;
    p.weight_decay = c.weight_decay;
    p.label_smoothing = c.label_smoothing;
    p.clip_grad_norm = c.clip_grad_norm;
    let mut adam = Adam::new(&params.iter().collect::<Vec<_>>(), c.lr).unwrap();
    let mut optim = Optim::new(&p, params, 1).unwrap();
    optim.schedule(&mut adam, 1, 0, 1);
    optim.step(&mut adam, params, grads).unwrap();
}

/// Lab 1's MLP (`model = "mlp"`, `hidden_layers = 2`, `hidden_width = 16`, the case's
/// activation), whose training step is the hand-written one of `backprop.rs`, not autograd:
/// the same tensors as [`ours`], from the same batch (as stored bytes, scaled to [0, 1]).
fn ours_mlp(c: &Case, activation: &str) -> Vec<(String, Tensor)> {
    let text = format!(
        "[sweep]\nname='t'\nseed=3\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
         [experiment.fixed]\nbatch_size=4\nmodel='mlp'\nhidden_layers=2\nhidden_width=16\n\
         activation='{activation}'\nlabel_smoothing={}\n",
        c.label_smoothing
    );
    let grid = sweep_common::grid::Grid::parse(&text, "t.toml").unwrap();
    let spec = grid.trials().next().unwrap().clone();
    let mut vs = tch::nn::VarStore::new(Device::Cpu);
    let model = Mlp::new(&vs.root(), &spec).unwrap();
    // As the trainer: the step computes the gradients itself, no autograd graph.
    vs.freeze();
    let (x, y) = batch(c.dataset);
    let raw = x.multiply_scalar(256.0).floor().to_kind(Kind::Uint8);
    let x = raw.to_kind(Kind::Float).divide_scalar(255.0);
    let named = |prefix: &str| -> Vec<(String, Tensor)> {
        model
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (format!("{prefix}{n}"), t.detach().copy()))
            .collect()
    };
    let mut out = vec![("x".into(), x.copy()), ("y".into(), y.to_kind(Kind::Float))];
    out.extend(named("init."));
    let loss = |logits: &Tensor| {
        logits.cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, c.label_smoothing)
    };
    tch::no_grad(|| {
        let logits = model.forward(&x).unwrap();
        out.push(("eval.loss".into(), loss(&logits)));
        out.push(("eval.logits".into(), logits.copy()));
        out.push(("train.loss".into(), loss(&logits)));
        out.push(("train.logits".into(), logits));
    });
    let mut ws = Workspace::new(&model, 4, 4, c.label_smoothing).unwrap();
    let idx = Tensor::from_slice(&[0i64, 1, 2, 3]);
    ws.step(&model, (&raw, &y), &idx, 0, (None, None)).unwrap();
    let mut params: Vec<Tensor> = model
        .named_parameters()
        .into_iter()
        .map(|(_, t)| t.shallow_clone())
        .collect();
    for ((n, _), g) in model.named_parameters().iter().zip(&ws.grads) {
        out.push((format!("grad.{n}"), g.copy()));
    }
    one_step(c, &mut params, &ws.grads);
    out.extend(named("step."));
    out
}

/// The MLP cases: each activation, with an optimiser option each.
fn mlp_cases() -> Vec<(Case, &'static str)> {
    vec![
        (case("mlp_relu", "mlp", FASHION), "relu"),
        (
            Case {
                optimizer: "adam",
                lr: 0.01,
                label_smoothing: 0.1,
                ..case("mlp_tanh_adam_smoothing", "mlp", FASHION)
            },
            "tanh",
        ),
        (
            Case {
                optimizer: "nesterov",
                momentum: 0.9,
                weight_decay: 0.01,
                clip_grad_norm: 0.05,
                ..case("mlp_sigmoid_nesterov_clip", "mlp", FASHION)
            },
            "sigmoid",
        ),
    ]
}

/// How the model lays out its activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// PyTorch's default: the same kernels as torch.nn, so the tight tolerance.
    Nchw,
    /// As the trainer runs a model with convolutions on the CPU (`net.rs`): the same
    /// arithmetic summed in another order. Batch norm's backward pass subtracts means (and a
    /// bias before batch norm has a gradient of pure rounding noise), so gradients agree only
    /// to about 1e-4 relative: a looser tolerance.
    ChannelsLast,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Nchw => "nchw",
            Layout::ChannelsLast => "channels_last",
        }
    }

    /// (relative, relative to the tensor's largest magnitude, absolute) tolerances.
    fn tolerance(self) -> (f64, f64, f64) {
        match self {
            Layout::Nchw => (1e-5, 1e-5, 0.0),
            Layout::ChannelsLast => (1e-3, 1e-3, 1e-6),
        }
    }
}

fn describe(c: &Case, layout: Layout) -> serde_json::Value {
    let shape = c.dataset.image_shape();
    let (rtol, atol_scale, atol) = layout.tolerance();
    serde_json::json!({
        "name": format!("{}.{}", c.name, layout.name()),
        "rtol": rtol,
        "atol_scale": atol_scale,
        "atol": atol,
        "spec": c.spec,
        "shape": shape,
        "optimizer": c.optimizer,
        "lr": c.lr,
        "momentum": c.momentum,
        "weight_decay": c.weight_decay,
        "label_smoothing": c.label_smoothing,
        "clip_grad_norm": c.clip_grad_norm,
        "train": !c.spec.contains("dropout"),
    })
}

#[test]
fn layers_and_optimisers_match_pytorch() {
    let Some(python) = torch_python() else {
        eprintln!("{NO_TORCH}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    let mut table = Vec::new();
    for c in &cases {
        for layout in [Layout::Nchw, Layout::ChannelsLast] {
            let tensors = ours(c, layout == Layout::ChannelsLast);
            let named: Vec<(String, &Tensor)> =
                tensors.iter().map(|(n, t)| (n.clone(), t)).collect();
            let bytes = checkpoint::encode(&named, HashMap::new()).unwrap();
            let file = format!("{}.{}.safetensors", c.name, layout.name());
            std::fs::write(dir.path().join(file), bytes).unwrap();
            table.push(describe(c, layout));
        }
    }
    for (c, activation) in &mlp_cases() {
        let tensors = ours_mlp(c, activation);
        let named: Vec<(String, &Tensor)> = tensors.iter().map(|(n, t)| (n.clone(), t)).collect();
        let bytes = checkpoint::encode(&named, HashMap::new()).unwrap();
        let file = format!("{}.safetensors", c.name);
        std::fs::write(dir.path().join(file), bytes).unwrap();
        let mut d = describe(c, Layout::Nchw);
        d["name"] = c.name.into();
        d["mlp"] = serde_json::json!({"hidden": [16, 16], "activation": activation});
        table.push(d);
    }
    std::fs::write(
        dir.path().join("cases.json"),
        serde_json::to_vec(&table).unwrap(),
    )
    .unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/numerics_check.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
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
    assert_eq!(lines.len(), table.len(), "{stdout}");
    let mut failures = Vec::new();
    for (c, l) in table.iter().zip(&lines) {
        let name = &c["name"];
        assert_eq!(&l["case"], name, "{stdout}");
        assert_eq!(l["unchecked"], serde_json::json!([]), "{l}");
        let checked = l["checked"].as_array().map_or(0, Vec::len);
        eprintln!(
            "{}: {checked} tensors compared with PyTorch's",
            name.as_str().unwrap_or("?")
        );
        // Evaluation logits and loss; in training mode also the logits, the loss, a gradient
        // and the state after the step of every parameter and buffer.
        assert!(checked >= 2, "{l}");
        for d in l["differ"].as_array().into_iter().flatten() {
            failures.push(format!(
                "case {}: {} differs from PyTorch's: {d}",
                name.as_str().unwrap_or("?"),
                d["tensor"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
