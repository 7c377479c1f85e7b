"""Lab 1 part 2 in plain PyTorch, the lab's way (torchvision FashionMNIST + ToTensor, random_split
70:30, a random_split of the training part per fraction, DataLoader batch 64, Adam 1e-3, test
accuracy on the 30 % after every epoch), for the fidelity comparison in docs/results/.
Prints one JSON line per fraction: {"fraction": f, "test_accuracy": [per epoch, %]}.

    python bench/pytorch_lab_part2.py --data-dir /usr/share/datasets/fashion-mnist --epochs 30 --seed 0
"""
import argparse
import json
import shutil

import torch
import torch.nn as nn
import torch.optim as optim
import torchvision.datasets as datasets
import torchvision.transforms as transforms
from torch.utils.data import DataLoader, random_split

from common import torchvision_root, lab_model, set_threads

p = argparse.ArgumentParser()
p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--epochs", type=int, default=30)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=0)
args = p.parse_args()
set_threads(args.threads)
torch.manual_seed(args.seed)

root = torchvision_root(args.data_dir)
dataset = datasets.FashionMNIST(root=root, train=True, transform=transforms.ToTensor(), download=False)


def split(ds, ratio):
    a = int(len(ds) * ratio)
    return random_split(ds, [a, len(ds) - a])


train_part, test_part = split(dataset, 0.7)
test_loader = DataLoader(test_part, batch_size=1000)
for fraction in [0.2, 0.4, 0.6, 0.8, 1.0]:
    subset = split(train_part, fraction)[0] if fraction < 1.0 else train_part
    loader = DataLoader(subset, batch_size=64, shuffle=True)
    model = lab_model(784, 1, 256)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    curve = []
    for epoch in range(args.epochs):
        for x, y in loader:
            loss = criterion(model(x.reshape(x.shape[0], -1)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            correct = sum(int((model(x.reshape(x.shape[0], -1)).argmax(1) == y).sum()) for x, y in test_loader)
        curve.append(round(100.0 * correct / len(test_part), 2))
    print(json.dumps({"fraction": fraction, "seed": args.seed, "test_accuracy": curve}), flush=True)
shutil.rmtree(root)
