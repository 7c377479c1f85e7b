"""The grid file's `model` spec (`conv(32,3,p=1) bn relu maxpool(2) gap linear(10)`) as the
equivalent PyTorch module, layer for layer as the worker builds it (`worker/src/train/net.rs`),
so that benchmarks train the same network in both and sweep's final weights load into it.

    from model_spec import build, forward_flops
    net = build("conv(32,3,p=1) bn relu maxpool(2) gap linear(10)", (3, 32, 32))
    forward_flops(spec, (3, 32, 32))   # multiply-adds x 2 of the conv and linear layers, per image

The grammar and its checks live in `common/src/model.rs`; this reads only valid specs.
"""
import re

import torch.nn as nn

_LAYER = re.compile(r"([a-z]+)(?:\(([^)]*)\))?")


def parse(spec):
    """[(name, positional ints/floats, {option: int})] for each layer of `spec`."""
    layers = []
    for m in _LAYER.finditer(spec):
        name, inside = m.group(1), m.group(2)
        pos, named = [], {}
        for a in (inside or "").split(","):
            a = a.strip()
            if not a:
                continue
            if "=" in a:
                k, v = a.split("=", 1)
                named[k.strip()] = int(v)
            else:
                pos.append(float(a) if name == "dropout" else int(a))
        layers.append((name, pos, named))
    return layers


class Residual(nn.Module):
    """conv3x3(s)-bn-relu-conv3x3-bn plus the input (through conv1x1(s)-bn when the shape
    changes), then relu; convolutions without bias, as `res(out,s=stride)` in the worker."""

    def __init__(self, c, out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = None
        if stride != 1 or c != out:
            self.shortcut = nn.Sequential(nn.Conv2d(c, out, 1, stride, 0, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
        return (y + (x if self.shortcut is None else self.shortcut(x))).relu()


def _walk(spec, input_shape):
    """Yields (name, module, flops per image) for each layer, tracking the shape."""
    c, h, w = input_shape
    flat = None  # features once the values are flat
    for name, pos, opt in parse(spec):
        if name == "conv":
            out, k = pos
            s, p = opt.get("s", 1), opt.get("p", 0)
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            yield name, nn.Conv2d(c, out, k, s, p), 2 * out * c * k * k * h * w
            c = out
        elif name == "res":
            (out,), s = pos, opt.get("s", 1)
            h2, w2 = (h - 1) // s + 1, (w - 1) // s + 1
            flops = 2 * out * c * 9 * h2 * w2 + 2 * out * out * 9 * h2 * w2
            if s != 1 or c != out:
                flops += 2 * out * c * h2 * w2
            yield name, Residual(c, out, s), flops
            c, h, w = out, h2, w2
        elif name == "bn":
            yield name, nn.BatchNorm1d(flat) if flat else nn.BatchNorm2d(c), 0
        elif name in ("relu", "tanh", "sigmoid"):
            yield name, {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[name](), 0
        elif name in ("maxpool", "avgpool"):
            (k,), s = pos, opt.get("s", pos[0])
            h, w = (h - k) // s + 1, (w - k) // s + 1
            yield name, (nn.MaxPool2d if name == "maxpool" else nn.AvgPool2d)(k, s), 0
        elif name in ("gap", "gmp"):
            pool = nn.AdaptiveAvgPool2d(1) if name == "gap" else nn.AdaptiveMaxPool2d(1)
            yield name, nn.Sequential(pool, nn.Flatten()), 0
            flat = c
        elif name == "dropout":
            yield name, nn.Dropout(pos[0]), 0
        elif name == "flatten":
            flat = flat or c * h * w
            yield name, nn.Flatten(), 0
        elif name == "linear":
            (out,) = pos
            flat = flat or c * h * w
            yield name, nn.Linear(flat, out), 2 * flat * out
            flat = out
        else:
            raise ValueError(f"unknown layer {name!r} in {spec!r}")


def build(spec, input_shape):
    """The spec as an nn.Sequential for inputs of shape (channels, height, width)."""
    return nn.Sequential(*[m for _, m, _ in _walk(spec, input_shape)])


def forward_flops(spec, input_shape):
    """Floating-point operations of one image's forward pass through the conv and linear layers
    (a training step costs about three times this)."""
    return sum(f for _, _, f in _walk(spec, input_shape))
