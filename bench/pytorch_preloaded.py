"""Careful PyTorch: the whole training split pre-loaded as one float tensor, batches sliced from a
per-epoch randperm, no per-batch host sync, evaluation in large batches under no_grad. The same
model, loss and optimizer as the lab.

    python bench/pytorch_preloaded.py --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist
    python bench/pytorch_preloaded.py --dataset cifar10 --synthetic 50000 --hidden-layers 3 --width 1024 --batch 128
"""
import argparse
import gzip
import os

import torch
import torch.nn as nn
import torch.optim as optim

from common import Timer, lab_model, report, set_threads

p = argparse.ArgumentParser()
p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "cifar10"])
p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--synthetic", type=int, default=0)
p.add_argument("--hidden-layers", type=int, default=1)
p.add_argument("--width", type=int, default=256)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--threads", type=int, default=0)
p.add_argument("--activation", default="relu")
p.add_argument("--flush-denormal", action="store_true",
               help="torch.set_flush_denormal(True): subnormal floats read and written as 0")
args = p.parse_args()
set_threads(args.threads)
if args.flush_denormal and not torch.set_flush_denormal(True):
    raise SystemExit("--flush-denormal: this CPU cannot flush subnormals")
torch.manual_seed(0)

input_size = 784 if args.dataset == "fashion-mnist" else 3072
if args.synthetic:
    images = torch.randint(0, 256, (args.synthetic, input_size), dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.synthetic,))
else:
    with gzip.open(os.path.join(args.data_dir, "train-images-idx3-ubyte.gz")) as f:
        images = torch.frombuffer(bytearray(f.read()[16:]), dtype=torch.uint8).reshape(-1, 784)
    with gzip.open(os.path.join(args.data_dir, "train-labels-idx1-ubyte.gz")) as f:
        labels = torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8).long()
x = images.float().div_(255)
perm = torch.randperm(len(x))
n_train = int(len(x) * 0.7)
train_x, train_y = x[perm[:n_train]], labels[perm[:n_train]]
test_x, test_y = x[perm[n_train:]], labels[perm[n_train:]]

model = lab_model(input_size, args.hidden_layers, args.width, args.activation)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.001)


def train_one_epoch():
    order = torch.randperm(n_train)
    loss_sum = torch.zeros(())
    for start in range(0, n_train, args.batch):
        idx = order[start:start + args.batch]
        loss = criterion(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
    return float(loss_sum)


def evaluate():
    with torch.no_grad():
        correct = 0
        for start in range(0, len(test_x), 8192):
            correct += int((model(test_x[start:start + 8192]).argmax(1) == test_y[start:start + 8192]).sum())
    return correct / len(test_x)


train_one_epoch()  # warm-up, not timed
epoch_times, train_times = [], []
for _ in range(args.epochs - 1):
    with Timer() as t:
        train_one_epoch()
    with Timer() as e:
        evaluate()
    train_times.append(t.seconds)
    epoch_times.append(t.seconds + e.seconds)
dims = [input_size] + [args.width] * args.hidden_layers + [10]
report("pytorch-preloaded-ftz" if args.flush_denormal else "pytorch-preloaded", args.dataset, dims, args.batch, n_train, epoch_times, train_times)
