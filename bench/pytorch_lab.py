"""The lab's own pipeline, faithfully: torchvision FashionMNIST with transform=ToTensor(),
random_split 70:30, DataLoader(batch_size=64, shuffle=True), the lab's training loop (including
its per-batch loss.item()), and its check_accuracy on the test split after every epoch.

    python bench/pytorch_lab.py --data-dir /usr/share/datasets/fashion-mnist --epochs 3 --threads 2
"""
import argparse
import shutil

import torch
import torch.nn as nn
import torch.optim as optim
import torchvision.datasets as datasets
import torchvision.transforms as transforms
from torch.utils.data import DataLoader, random_split

from common import torchvision_root, Timer, lab_model, report, set_threads

p = argparse.ArgumentParser()
p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--threads", type=int, default=0)
args = p.parse_args()
set_threads(args.threads)
torch.manual_seed(0)

root = torchvision_root(args.data_dir)
dataset = datasets.FashionMNIST(root=root, train=True, transform=transforms.ToTensor(), download=False)
n_train = int(len(dataset) * 0.7)
train_set, test_set = random_split(dataset, [n_train, len(dataset) - n_train])
train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
test_loader = DataLoader(test_set, batch_size=64, shuffle=True)

model = lab_model(784, 1, 256)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.001)


def train_one_epoch():
    losses = []
    for data, targets in train_loader:
        data = data.reshape(data.shape[0], -1)
        scores = model(data)
        loss = criterion(scores, targets)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return sum(losses) / len(losses)


def check_accuracy(loader):
    correct = total = 0
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            _, pred = model(x.reshape(x.shape[0], -1)).max(1)
            correct += (pred == y).sum()
            total += pred.size(0)
    model.train()
    return float(correct) / total


train_one_epoch()  # warm-up, not timed
epoch_times, train_times = [], []
for _ in range(args.epochs - 1):
    with Timer() as t:
        train_one_epoch()
    with Timer() as e:
        check_accuracy(test_loader)
    train_times.append(t.seconds)
    epoch_times.append(t.seconds + e.seconds)
report("pytorch-lab-pipeline", "fashion-mnist", [784, 256, 10], 64, n_train, epoch_times, train_times)
shutil.rmtree(root)
