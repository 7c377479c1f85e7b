"""Loads every trial's final weights (OUT/models/*.safetensors) into the PyTorch module
`model_spec.build` makes from the trial's `model` spec, and measures its accuracy on the
held-out images of the sweep's own .npz file (x_test, y_test), as the worker scales them (/255,
then, for `normalize = "dataset"`, per channel with the statistics of x_train, the trials'
training part).
Prints one JSON line per trial: name, PyTorch's accuracy, the trial's reported test accuracy.

    python bench/weights_accuracy.py runs/own-data examples/own-data.npz

Needs only torch: the .npz and .safetensors files are read with the standard library (no numpy,
no safetensors package), so the project's libtorch venv runs it as it is."""
import ast
import json
import os
import struct
import sys
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_spec import build  # noqa: E402

NPY_DTYPES = {"|u1": torch.uint8, "<i8": torch.int64, "<i4": torch.int32, "|i1": torch.int8,
              "<f4": torch.float32}


def npy(data):
    """A .npy file's array as a tensor (C order; the dtypes above)."""
    assert data[:6] == b"\x93NUMPY", "not a .npy file"
    if data[6] == 1:
        (n,), start = struct.unpack("<H", data[8:10]), 10
    else:
        (n,), start = struct.unpack("<I", data[8:12]), 12
    header = ast.literal_eval(data[start:start + n].decode("latin1"))
    assert not header["fortran_order"]
    body = bytearray(data[start + n:])
    return torch.frombuffer(body, dtype=NPY_DTYPES[header["descr"]]).reshape(header["shape"])


def npz(path, names):
    """The arrays `names` of a .npz file (np.savez's zip of .npy members)."""
    with zipfile.ZipFile(path) as z:
        return {name: npy(z.read(name + ".npy")) for name in names}


SAFETENSORS_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[a:b]), dtype=SAFETENSORS_DTYPES[t["dtype"]]).reshape(t["shape"])
    return out


def images(x):
    """(n, h, w) or (n, h, w, c) uint8 to (n, c, h, w) floats in [0, 1], as the worker has them."""
    if x.dim() == 3:
        x = x.unsqueeze(3)
    return x.permute(0, 3, 1, 2).float() / 255


def normalizer(x_train):
    """normalize = "dataset": each channel's mean and (population) standard deviation over the
    training images, in double, as worker/src/train/normalize.rs computes them."""
    x = x_train.double().transpose(0, 1).reshape(x_train.shape[1], -1)
    mean = x.mean(1)
    std = ((x * x).mean(1) - mean * mean).clamp_min(0).sqrt().clamp_min(1e-6)
    mean, std = mean.float().view(1, -1, 1, 1), std.float().view(1, -1, 1, 1)
    return lambda t: (t - mean) * (1 / std)


def main(out, data_file):
    data = npz(data_file, ["x_train", "x_test", "y_test"])
    x, y = images(data["x_test"]), data["y_test"].long()
    normalized = normalizer(images(data["x_train"]))(x)
    results = json.load(open(os.path.join(out, "results.json")))
    torch.set_num_threads(1)
    for t in results["trials"]:
        spec = t["params"].get("model", "mlp")
        if t.get("weights") is None or spec == "mlp":
            continue
        net = build(spec, tuple(x.shape[1:]))
        net.load_state_dict(safetensors(os.path.join(out, t["weights"])))
        net.eval()
        inputs = normalized if t["params"].get("normalize") == "dataset" else x
        with torch.no_grad():
            correct = (net(inputs).argmax(1) == y).sum().item()
        print(json.dumps({"name": t["name"], "pytorch": 100.0 * correct / len(y),
                          "sweep": t["test_accuracy"], "images": len(y)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
