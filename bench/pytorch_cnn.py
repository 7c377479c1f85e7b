"""Careful PyTorch for a grid `model` spec (bench/model_spec.py): the whole dataset pre-loaded
on the device as one float tensor, batches sliced from a per-epoch randperm, SGD with momentum,
no per-batch host sync, evaluation of the held-out split in large batches under no_grad after every
epoch (as sweep's epochs do). Prints one JSON line per model and seed: the final
test accuracy, seconds per epoch (train + test,
the first epoch left out as warm-up), images per second, and GFLOP/s: the training step's conv and linear FLOPs (3x forward) over
the epoch's seconds.

    python bench/pytorch_cnn.py --data DIR/cifar-10-batches-bin --device cuda \\
        --model "conv(32,3,p=1) bn relu maxpool(2) gap linear(10)" --epochs 3
"""
import argparse
import gzip
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_spec import build, forward_flops  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", required=True, help="cifar-10-batches-bin folder or Fashion-MNIST IDX folder")
p.add_argument("--model", action="append", required=True, help="a grid model spec (repeatable)")
p.add_argument("--device", default="cpu")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"], help="sgd: momentum 0.9")
p.add_argument("--seed", type=int, action="append", help="repeatable; one run per model and seed [0]")
p.add_argument("--threads", type=int, default=0)
p.add_argument("--holdout", type=float, default=0.3,
               help="test on this share of the training files, as sweep's trials do (0: the test files)")
args = p.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
dev = torch.device(args.device)


def cifar_bin(folder, names):
    raw = b"".join(open(os.path.join(folder, n), "rb").read() for n in names)
    rows = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(-1, 3073)
    return rows[:, 1:].reshape(-1, 3, 32, 32), rows[:, 0].long()


def idx(folder, prefix):
    with gzip.open(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz")) as f:
        x = torch.frombuffer(bytearray(f.read()[16:]), dtype=torch.uint8).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        y = torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8).long()
    return x, y


if os.path.exists(os.path.join(args.data, "data_batch_1.bin")):
    dataset, shape = "cifar10", (3, 32, 32)
    train = cifar_bin(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)])
    test = cifar_bin(args.data, ["test_batch.bin"])
else:
    dataset, shape = "fashion-mnist", (1, 28, 28)
    train, test = idx(args.data, "train"), idx(args.data, "t10k")
if args.holdout:
    order = torch.randperm(len(train[1]), generator=torch.Generator().manual_seed(0))
    cut = int(len(order) * (1 - args.holdout))
    train, test = (train[0][order[:cut]], train[1][order[:cut]]), (train[0][order[cut:]], train[1][order[cut:]])
train_x, train_y = train[0].to(dev).float().div_(255), train[1].to(dev)
test_x, test_y = test[0].to(dev).float().div_(255), test[1].to(dev)
n = len(train_x)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


for spec, seed in [(m, s) for m in args.model for s in args.seed or [0]]:
    torch.manual_seed(seed)
    model = build(spec, shape).to(dev)
    criterion = nn.CrossEntropyLoss()
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    def epoch():
        model.train()
        order = torch.randperm(n, device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        for start in range(0, n, args.batch):
            i = order[start:start + args.batch]
            out = model(train_x[i])
            loss = criterion(out, train_y[i])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            correct += (out.argmax(1) == train_y[i]).sum()
        model.eval()
        right = torch.zeros((), device=dev, dtype=torch.long)
        with torch.no_grad():
            for start in range(0, len(test_x), 1000):
                right += (model(test_x[start:start + 1000]).argmax(1) == test_y[start:start + 1000]).sum()
        return 100.0 * int(right) / len(test_x)  # one host sync per epoch

    times = []
    for e in range(args.epochs):
        sync()
        t = time.perf_counter()
        accuracy = epoch()
        sync()
        if e > 0 or args.epochs == 1:
            times.append(time.perf_counter() - t)
    secs = sum(times) / len(times)
    flops = 3 * forward_flops(spec, shape) * n
    print(json.dumps({
        "impl": "pytorch-preloaded", "device": args.device, "dataset": dataset, "model": spec,
        "optimizer": args.optimizer, "lr": args.lr, "seed": seed, "batch": args.batch, "epochs": args.epochs,
        "test_accuracy": round(accuracy, 2), "train_images": n, "epoch_s": round(secs, 4),
        "images_per_s": round(n / secs), "gflops": round(flops / secs / 1e9, 1),
    }), flush=True)
