"""A program trial for the end-to-end tests that ignores SIGTERM and stops when the client
library says so: it reports epoch 1, writes `started`, asks `should_stop()` until it answers
yes, then reports epoch 2 (whose answer must say stop again), writes that answer to `told` and
exits 0.
"""

import os
import signal
import time

import sweep

signal.signal(signal.SIGTERM, signal.SIG_IGN)
trial = sweep.trial()
params = trial.params
trial.report(1, test_accuracy=10.0)


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.rename(path + ".tmp", path)


write(params["started"], "started")
while not trial.should_stop():
    time.sleep(0.02)
write(params["told"], str(trial.report(2, test_accuracy=20.0)))
