"""A training program to sweep over, standard library only (issue 19).

The worker runs it as `python3 train.py --lr LR --width WIDTH` (see grid.toml) in its own
process group, with the trial's hyperparameters also in the JSON file SWEEP_PARAMS names. Its
exit status decides success; its last stdout line, a JSON object, carries its metrics
(`test_accuracy` in percent, optionally `train_accuracy` and `train_loss`). Final weights, if
any, go to the path SWEEP_WEIGHTS names. Here the "model" is a toy: the point is the contract.
"""

import argparse
import json
import math
import os
import random
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--width", type=int, required=True)
args = parser.parse_args()
params = json.load(open(os.environ["SWEEP_PARAMS"]))
random.seed(params["seed"])

loss = 2.3
for epoch in range(1, params["epochs"] + 1):
    loss *= math.exp(-args.lr * math.log2(args.width))
    print(f"epoch {epoch}: loss {loss:.4f}", file=sys.stderr, flush=True)

with open(os.environ["SWEEP_WEIGHTS"], "wb") as f:
    f.write(json.dumps({"lr": args.lr, "width": args.width, "loss": loss}).encode())
accuracy = 100.0 * (1.0 - loss / 2.3) * (0.98 + 0.02 * random.random())
print(json.dumps({"test_accuracy": accuracy, "train_loss": loss}))
