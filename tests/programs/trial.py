"""A program trial for the end-to-end tests, standard library only.

Reads its hyperparameters from the file SWEEP_PARAMS names; fails (exit 1, a message on
stderr) when its `mode` says so or when a token reached its environment; with mode "stubborn"
ignores SIGTERM, forks a child that forks a grandchild, and writes the three pids to `pids`
before sleeping forever;
otherwise prints its metrics as a final JSON line.
"""

import json
import os
import signal
import sys
import time

params = json.load(open(os.environ["SWEEP_PARAMS"]))
leaked = [k for k in os.environ if "TOKEN" in k]
if leaked:
    print(f"a token reached the program: {leaked}", file=sys.stderr)
    sys.exit(2)
mode = params["mode"]
if mode == "fail":
    print("loading the data", file=sys.stderr)
    print("ValueError: the program gave up", file=sys.stderr)
    sys.exit(1)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        grandchild = os.fork()
        if grandchild == 0:
            time.sleep(1000)
            os._exit(0)
        os.write(write, f"{grandchild}\n".encode())
        time.sleep(1000)
        os._exit(0)
    grandchild = os.read(read, 64).decode().strip()
    path = params["pids"]
    with open(path + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child} {grandchild}\n")
    os.rename(path + ".tmp", path)
    time.sleep(1000)
print("training", flush=True)
print(json.dumps({"test_accuracy": 50.0 + 100 * params["lr"], "train_loss": 0.5}))
