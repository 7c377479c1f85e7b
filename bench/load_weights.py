"""Loads a trial's final weights (models/*.safetensors) into the lab's PyTorch model and
classifies the whole official Fashion-MNIST training set: python bench/load_weights.py runs/lab1-demo"""
import gzip, json, sys
import torch, torch.nn as nn
from safetensors.torch import load_file
out = sys.argv[1]
r = json.load(open(f"{out}/results.json"))
t = [t for t in r["trials"] if t["params"]["train_fraction"] == 1.0][0]
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
model.load_state_dict(load_file(f"{out}/{t['weights']}"))
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    x = torch.frombuffer(bytearray(f.read()[16:]), dtype=torch.uint8).reshape(-1, 784).float() / 255
with gzip.open("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") as f:
    y = torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8).long()
with torch.no_grad():
    acc = (model(x).argmax(1) == y).float().mean().item() * 100
print(f"{t['name']}: loaded into nn.Sequential; accuracy on all 60000 training images {acc:.2f} % "
      f"(sweep: train {t['train_accuracy']:.2f} % on its 42000, test {t['test_accuracy']:.2f} % on the 18000)")
