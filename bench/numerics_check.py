"""Checks the worker's layers and optimisers against PyTorch's own modules and optimisers
(issue 18). `worker/src/train/numerics_tests.rs` writes, for each case of its table, one
DIR/<case>.safetensors with what the native trainer computed on a small fixed batch, and
DIR/cases.json describing the cases; this builds the same module with `model_spec.py`, loads
the initial tensors, runs the same forward passes, backward pass and one optimiser step with
torch.nn / torch.optim, and prints one JSON line per case:

    {"case": "...", "checked": [tensor names], "differ": [{"tensor", "max_abs", "index", "ours", "torch"}]}

    python bench/numerics_check.py DIR

Tensors in the file: `x` (the batch, flattened images in [0, 1]), `y` (labels, as floats),
`init.<name>` (parameters and buffers before the step), `eval.logits`, `eval.loss` (evaluation
mode, before the step), `train.logits`, `train.loss` (training mode), `grad.<name>` (before
clipping), `step.<name>` (parameters and buffers after the step). A case with dropout has only
the evaluation-mode tensors: the worker's dropout masks are a hash of (seed, position), not
torch's generator, so training mode cannot be compared.

Tolerance (float32), given by each case (rtol, atol_scale, atol): each element within rtol of
its PyTorch value plus atol_scale times the largest magnitude in that PyTorch tensor plus atol.
The test asks 1e-5 (both) of the worker's NCHW layout and 1e-3 (plus 1e-6) of the
channels-last layout the worker uses for convolutions on the CPU, which sums in another order.
Needs only torch (the project's libtorch venv).
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_spec import build  # noqa: E402
from weights_accuracy import safetensors  # noqa: E402


def compare(name, ours, theirs, tolerance, differ):
    rtol, atol_scale, atol = tolerance
    theirs = theirs.detach().to(torch.float32).reshape(ours.shape)
    diff = (ours - theirs).abs()
    bound = rtol * theirs.abs() + atol_scale * theirs.abs().max() + atol
    bad = diff > bound
    if bool(bad.any()) or not bool(torch.isfinite(ours).all()):
        i = int((diff - bound).flatten().argmax())
        differ.append({
            "tensor": name,
            "max_abs": float(diff.max()),
            "index": i,
            "ours": float(ours.flatten()[i]),
            "torch": float(theirs.flatten()[i]),
        })


def optimiser(case, params):
    kind, lr, wd, m = case["optimizer"], case["lr"], case["weight_decay"], case["momentum"]
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if kind in ("sgd", "nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=m, weight_decay=wd, nesterov=kind == "nesterov")
    raise ValueError(f"unknown optimizer {kind!r}")


def mlp(case):
    """Lab 1's MLP: nn.Sequential(Linear, act, ..., Linear), as worker/src/train/model.rs."""
    c, h, w = case["shape"]
    dims = [c * h * w] + case["mlp"]["hidden"] + [10]
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[case["mlp"]["activation"]]
    layers = []
    for i in range(len(dims) - 1):
        layers += [nn.Linear(dims[i], dims[i + 1])] + ([act()] if i < len(dims) - 2 else [])
    return nn.Sequential(*layers)


def check(case, tensors):
    """The names compared and the differences of one case."""
    net = mlp(case) if "mlp" in case else build(case["spec"], tuple(case["shape"]))
    init = {k[len("init."):]: v for k, v in tensors.items() if k.startswith("init.")}
    net.load_state_dict(init, strict=True)
    x = tensors["x"] if "mlp" in case else tensors["x"].reshape(-1, *case["shape"])
    y = tensors["y"].long()
    smoothing = case["label_smoothing"]
    checked, differ = [], []
    tolerance = (case["rtol"], case["atol_scale"], case["atol"])

    def cmp(name, theirs):
        checked.append(name)
        compare(name, tensors[name], theirs, tolerance, differ)

    net.eval()
    with torch.no_grad():
        logits = net(x)
        cmp("eval.logits", logits)
        cmp("eval.loss", F.cross_entropy(logits, y, label_smoothing=smoothing))
    if not case["train"]:
        return checked, differ
    net.train()
    logits = net(x)
    loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
    cmp("train.logits", logits)
    cmp("train.loss", loss)
    loss.backward()
    named = list(net.named_parameters())
    for name, p in named:
        cmp(f"grad.{name}", p.grad)
    if case["clip_grad_norm"] > 0:
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in named], case["clip_grad_norm"])
        # The case must clip: a bound above the norm would test nothing.
        if float(norm) <= case["clip_grad_norm"]:
            differ.append({"tensor": "grad_norm", "note": "not clipped", "norm": float(norm)})
    optimiser(case, [p for _, p in named]).step()
    for name, t in net.state_dict().items():
        cmp(f"step.{name}", t)
    return checked, differ


def main(folder):
    with open(os.path.join(folder, "cases.json")) as f:
        cases = json.load(f)
    for case in cases:
        tensors = safetensors(os.path.join(folder, case["name"] + ".safetensors"))
        checked, differ = check(case, tensors)
        missing = sorted(set(tensors) - set(checked) - {"x", "y"} - {k for k in tensors if k.startswith("init.")})
        print(json.dumps({"case": case["name"], "checked": checked, "differ": differ, "unchecked": missing}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
