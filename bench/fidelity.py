"""Builds docs/results/lab1_part2.md: lab 1 part 2's learning curves (test accuracy after every
epoch, 5 training fractions, 30 epochs, real Fashion-MNIST) from a sweep's results.json, side by
side with plain PyTorch runs of the same setup (bench/pytorch_lab_part2.py) and the lab's report.

    python bench/fidelity.py runs/lab1-demo/results.json target/fidelity/pytorch_seed0.jsonl \
        [--repeat runs/lab1-demo-2/results.json] > docs/results/lab1_part2.md
"""
import argparse
import json

p = argparse.ArgumentParser()
p.add_argument("results")
p.add_argument("pytorch")
p.add_argument("--repeat", help="a second results.json of the same sweep, to check determinism")
args = p.parse_args()

ours = json.load(open(args.results))
trials = {t["params"]["train_fraction"]: t for t in ours["trials"] if t["experiment"] == "p2_fashion_mnist"}
torch_runs = {r["fraction"]: r["test_accuracy"] for r in map(json.loads, open(args.pytorch)) if r}
fractions = sorted(trials)
epochs = max(len(t["epochs"]) for t in trials.values())

print("# Lab 1 part 2: fidelity of the sweep's trainer\n")
print("Real Fashion-MNIST (Debian's `dataset-fashion-mnist`), the lab's setup: 70:30 split of the")
print("official training set, 784-256-10 ReLU MLP, Adam 1e-3, batch 64, 30 epochs, test accuracy on")
print("the 18 000 held-out images after every epoch, training on 20 %-100 % of the 42 000.\n")
print("- **sweep**: `./scripts/demo` (`coordinator --grid lab1.toml --only p2_fashion_mnist` with two CPU")
print("  workers), seed 0.")
print("- **PyTorch**: `bench/pytorch_lab_part2.py --seed 0`, the lab's own pipeline (torchvision,")
print("  `random_split`, `DataLoader`), same hyperparameters; its split and subsets come from torch's RNG,")
print("  so it sees other (equally random) images than the sweep.")
print("- **lab report**: the lab's figure shows every curve saturating near 89 %; its text's \"84.5 % after")
print("  epoch 1\" at 0.2 is not reproduced by independent PyTorch runs (77-79 %, see SPEC.md).\n")
print("![Learning curves of the sweep's run](lab1_part2_learning_curves.png)\n")
print("## Final test accuracy (%) after 30 epochs\n")
print("| fraction | training images | sweep | PyTorch | expected (independent PyTorch runs) |")
print("|---:|---:|---:|---:|---|")
expected = {0.2: "about 86", 1.0: "about 89.6"}
for f in fractions:
    t = trials[f]
    n = sum(t["train_confusion"]["counts"])
    tr = torch_runs.get(f, [None])[-1]
    print(f"| {f} | {n} | {t['test_accuracy']:.2f} | {tr if tr is not None else '-'} | {expected.get(f, '')} |")
print("\n## Test accuracy (%) after each epoch: sweep / PyTorch\n")
print("| epoch | " + " | ".join(f"{f}" for f in fractions) + " |")
print("|---:|" + "---:|" * len(fractions))
for e in range(epochs):
    cells = []
    for f in fractions:
        ours_e = trials[f]["epochs"][e]["test_accuracy"] if e < len(trials[f]["epochs"]) else None
        torch_e = torch_runs.get(f, [])[e] if e < len(torch_runs.get(f, [])) else None
        cells.append(f"{ours_e:.2f} / {torch_e if torch_e is not None else '-'}")
    print(f"| {e + 1} | " + " | ".join(cells) + " |")

if args.repeat:
    again = json.load(open(args.repeat))
    other = {t["params"]["train_fraction"]: t for t in again["trials"] if t["experiment"] == "p2_fashion_mnist"}
    same = all(
        [(m["train_loss"], m["train_accuracy"], m["test_accuracy"]) for m in trials[f]["epochs"]]
        == [(m["train_loss"], m["train_accuracy"], m["test_accuracy"]) for m in other[f]["epochs"]]
        and trials[f]["test_confusion"] == other[f]["test_confusion"]
        for f in fractions
    )
    print("\n## Determinism\n")
    print(f"The same sweep run twice on the CPU (two workers each time, trials landing on either worker): "
          f"every epoch's loss and accuracies and every confusion matrix are **{'identical' if same else 'NOT identical'}** "
          f"across the two runs.")
