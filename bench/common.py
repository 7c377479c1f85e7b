"""Shared helpers of the PyTorch baselines: the lab's model, timing, JSON output."""
import gzip
import json
import os
import shutil
import tempfile
import time

import torch
import torch.nn as nn


def set_threads(n):
    if n > 0:
        torch.set_num_threads(n)


def lab_model(input_size, hidden_layers, width, activation="relu"):
    """The lab's NN: Linear+act blocks, then Linear(width, 10) (softmax inside the loss)."""
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation]
    layers = [nn.Linear(input_size, width), act()]
    for _ in range(hidden_layers - 1):
        layers += [nn.Linear(width, width), act()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def step_flops(dims, batch):
    """Forward and weight-gradient matmuls of every layer, input gradients of all but the first."""
    total = 0.0
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        mm = 2.0 * a * b * batch
        total += 2 * mm if i == 0 else 3 * mm
    return total


def epoch_flops(dims, n, batch):
    full, last = divmod(n, batch)
    return full * step_flops(dims, batch) + (step_flops(dims, last) if last else 0.0)


def report(impl, dataset, dims, batch, n, epoch_times, train_times=None):
    train_times = train_times or epoch_times
    mean = lambda v: sum(v) / len(v)
    train = mean(train_times)
    print(json.dumps({
        "impl": impl,
        "dataset": dataset,
        "dims": dims,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "train_images": n,
        "epoch_s": round(mean(epoch_times), 4),
        "train_s": round(train, 4),
        "samples_per_s": round(n / train),
        "gflops": round(epoch_flops(dims, n, batch) / train / 1e9, 1),
    }), flush=True)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def torchvision_root(data_dir):
    """A temporary torchvision root holding FashionMNIST/raw/ with the official files of
    `data_dir` decompressed (torchvision with download=False looks for the decompressed files)."""
    root = tempfile.mkdtemp()
    raw = os.path.join(root, "FashionMNIST", "raw")
    os.makedirs(raw)
    for f in os.listdir(data_dir):
        if f.endswith(".gz"):
            with gzip.open(os.path.join(data_dir, f)) as src, open(os.path.join(raw, f[:-3]), "wb") as dst:
                shutil.copyfileobj(src, dst)
    return root
