"""A program trial for the early-stopping end-to-end test: its test accuracy is `quality` times
the epoch, so the stopping rule ranks the configurations by `quality`. It ignores SIGTERM (the
worker's signal when the trial is stopped), so that the stop reaches it through the client
library's answer to its report, as it reaches a program that checks it. It writes its pid to
`{dir}/pid-{quality}` first. After each report it asks `should_stop()` for up to a second;
when a report is answered "stop" or `should_stop()` says so, it writes the epoch it had
reported to `{dir}/told-{quality}` and exits 0, as a program using the client should.
"""

import os
import signal
import time

import sweep

signal.signal(signal.SIGTERM, signal.SIG_IGN)
trial = sweep.trial()
params = trial.params
quality = params["quality"]
folder = params["dir"]


def write(name, text):
    path = os.path.join(folder, f"{name}-{quality}")
    with open(path + ".tmp", "w") as f:
        f.write(str(text) + "\n")
    os.rename(path + ".tmp", path)


write("pid", os.getpid())
def told_to_stop():
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if trial.should_stop():
            return True
        time.sleep(0.02)
    return False


for epoch in range(1, trial.epochs + 1):
    if trial.report(epoch, test_accuracy=float(quality * epoch)) or told_to_stop():
        write("told", epoch)
        break
