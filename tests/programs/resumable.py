"""A program trial that uses the client library, for the end-to-end tests.

Each epoch adds its number to a running total kept in its checkpoint folder, reports the total
as its test accuracy and marks a checkpoint; so a trial of 3 epochs ends at 6 only if an attempt
that resumed read the total its predecessor left. Each attempt appends "pid resume_epoch" to the
file `attempts`; the first attempt, after its first checkpoint, writes its pid to `ready` and
waits to be killed.
"""

import json
import os
import time

import sweep

trial = sweep.trial()
params = trial.params
with open(params["attempts"], "a") as f:
    f.write(f"{os.getpid()} {trial.resume_epoch}\n")
state = {"total": 0}
if trial.resume_dir():
    with open(os.path.join(trial.resume_dir(), "state.json")) as f:
        state = json.load(f)
for epoch in range(trial.resume_epoch + 1, trial.epochs + 1):
    state["total"] += epoch
    with open(os.path.join(trial.checkpoint_dir(), "state.json"), "w") as f:
        json.dump(state, f)
    if trial.report(epoch, test_accuracy=float(state["total"]), train_loss=1.0 / epoch):
        break
    trial.checkpoint(epoch)
    if trial.resume_epoch == 0 and epoch == 1:
        ready = params["ready"]
        with open(ready + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(ready + ".tmp", ready)
        time.sleep(1000)
