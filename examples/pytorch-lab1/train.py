"""Lab 1 part 2 (Fashion-MNIST, fraction of the training split used) as plain PyTorch code,
the way the lab's notebook trains it, plus the 10 lines marked `# sweep` for the client library.

Model: Linear(784, 256) -> ReLU -> Linear(256, 10); Adam 0.001, batch 64, cross-entropy; the
official training set split 70:30 at random (42 000 / 18 000), a random `train_fraction` of the
70 % trained on, test accuracy on the 30 % after every epoch. Reads the same IDX files as the
native trainer (torchvision-free). Alone: `python train.py --data DIR --epochs 2`.
"""

import argparse
import gzip
import os

import torch
from torch import nn

import sweep  # sweep

parser = argparse.ArgumentParser()
parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
parser.add_argument("--train-fraction", type=float, default=1.0)
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--lr", type=float, default=0.001)
parser.add_argument("--width", type=int, default=256)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()
torch.manual_seed(args.seed)
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


def idx(name, header):
    with gzip.open(os.path.join(args.data, name), "rb") as f:
        return torch.frombuffer(bytearray(f.read()[header:]), dtype=torch.uint8)


images = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784).float() / 255.0  # ToTensor()
labels = idx("train-labels-idx1-ubyte.gz", 8).long()
order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(args.seed))
n_train = int(0.7 * len(labels))
train_idx, test_idx = order[:n_train], order[n_train:]
train_idx = train_idx[: int(args.train_fraction * n_train)]

model = nn.Sequential(nn.Linear(784, args.width), nn.ReLU(), nn.Linear(args.width, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
loss_fn = nn.CrossEntropyLoss()

trial = sweep.trial()  # sweep
if trial.resume_dir():  # sweep
    state = torch.load(os.path.join(trial.resume_dir(), "state.pt"))  # sweep
    model.load_state_dict(state["model"]), optimizer.load_state_dict(state["optimizer"])  # sweep

for epoch in range(trial.resume_epoch + 1, args.epochs + 1):  # sweep
    model.train()
    correct = total = 0
    running = 0.0
    perm = train_idx[torch.randperm(len(train_idx))]
    for i in range(0, len(perm), args.batch_size):
        batch = perm[i : i + args.batch_size]
        x, y = images[batch], labels[batch]
        optimizer.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        optimizer.step()
        running += loss.item()
        correct += (out.argmax(1) == y).sum().item()
        total += len(y)
    train_loss = running / ((len(perm) + args.batch_size - 1) // args.batch_size)
    train_acc = 100.0 * correct / total
    model.eval()
    confusion = torch.zeros(10, 10, dtype=torch.long)
    with torch.no_grad():
        predicted = model(images[test_idx]).argmax(1)
        confusion.index_put_((labels[test_idx], predicted), torch.ones_like(predicted), accumulate=True)
    test_acc = 100.0 * confusion.diag().sum().item() / len(test_idx)
    print(f"Epoch {epoch}: loss {train_loss:.4f}, train {train_acc:.2f} %, test {test_acc:.2f} %", flush=True)
    if trial.report(epoch, test_accuracy=test_acc, train_accuracy=train_acc, train_loss=train_loss, confusion=confusion): break  # sweep
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
    torch.save(state, os.path.join(trial.checkpoint_dir(), "state.pt"))  # sweep
    trial.checkpoint(epoch)  # sweep

# The last checkpoint holds the final model.
trial.save_weights(os.path.join(trial.checkpoint_dir(), "state.pt"))  # sweep
