"""Ours: a grid of --trials trials (one experiment, seed = 0..N-1, --epochs epochs each) run by
`coordinator --linger 0s` and --workers `worker --test-trainer 0s` processes (1 slot, 1 thread
each), which "train" with no data and no libtorch work. Times the first lease to the last result
(from the coordinator's log), and the coordinator's start to its exit (which includes the workers'
start-up and writing the report)."""
import json
import os
import re
import shutil
import subprocess
import threading
import time
from datetime import datetime

from common import arguments, record

p = arguments(__doc__)
p.add_argument("--bin-dir", required=True)
p.add_argument("--workers", type=int, default=2)
p.add_argument("--checkpoint-every", type=int, default=None, help="default: the grid's default (3)")
args = p.parse_args()

tmp = os.path.join(args.tmp, "sweep")
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)
grid = os.path.join(tmp, "grid.toml")
out = os.path.join(tmp, "out")
every = "" if args.checkpoint_every is None else f"checkpoint_every = {args.checkpoint_every}\n"
with open(grid, "w") as f:
    f.write(f"""[sweep]
name = "anchors"
seed = 0
max_attempts = 1

[[experiment]]
name = "trivial"
dataset = "fashion-mnist"
trial_name = "t_{{seed}}"
{every}
[experiment.fixed]
hidden_layers = 1
hidden_width = 8
epochs = {args.epochs}

[experiment.grid]
seed = [{", ".join(str(s) for s in range(args.trials))}]
""")

coordinator_bin = os.path.join(args.bin_dir, "coordinator")
version = subprocess.run([coordinator_bin, "--version"], capture_output=True, text=True).stdout.split()[-1]
log = os.path.join(tmp, "coordinator.log")
start = time.perf_counter()
coordinator = subprocess.Popen(
    [coordinator_bin, "--grid", grid, "--out", out, "--listen", "127.0.0.1:0", "--linger", "0s"],
    stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
)
# Its stdout says "listening on ADDR" once it serves; keep draining it after that.
addr, listening = [], threading.Event()


def drain():
    for line in coordinator.stdout:
        if line.startswith("listening on ") and not addr:
            addr.append(line.split()[-1])
            listening.set()
    listening.set()


threading.Thread(target=drain, daemon=True).start()
if not listening.wait(60) or not addr:
    coordinator.kill()
    raise SystemExit(f"the coordinator did not start listening; see {log}")
workers = [
    subprocess.Popen(
        [os.path.join(args.bin_dir, "worker"), "--cpu", "--test-trainer", "0s",
         "--coordinator", f"http://{addr[0]}", "--name", f"w{n}", "--slots", "1", "--threads", "1",
         "--offline"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, f"w{n}.log"), "w"),
    )
    for n in range(1, args.workers + 1)
]
try:
    rc = coordinator.wait(timeout=3600)
    end = time.perf_counter()
finally:
    # A worker that asks after the coordinator left (--linger 0s) retries for a minute: stop it.
    for process in [coordinator, *workers]:
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()
assert rc == 0, f"the coordinator exited with {rc}; see {log}"


def stamp(line):
    """The time of a log line (RFC 3339, nanoseconds cut to microseconds)."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", line)
    frac = (m.group(2) or ".0")[:7]
    return datetime.fromisoformat(m.group(1) + frac + "+00:00").timestamp()


lines = open(log).read().splitlines()
leased = [stamp(l) for l in lines if "trial leased" in l]
ended = [stamp(l) for l in lines if "trial succeeded" in l or "trial failed" in l]
results = json.load(open(os.path.join(out, "results.json")))
ok = sum(1 for t in results["trials"] if t["status"] == "succeeded" and len(t["epochs"]) == args.epochs)
assert ok == args.trials, f"only {ok} of {args.trials} trials succeeded with {args.epochs} epochs"
variant = f"{args.workers} workers x 1 slot, " + (
    "checkpoint every 3 epochs (default)" if args.checkpoint_every is None
    else f"checkpoint every {args.checkpoint_every} epochs" if args.checkpoint_every
    else "no checkpoints")
record(
    args.jsonl, "sweep", variant, version, args.trials, max(ended) - min(leased), end - start,
    epochs=args.epochs, parallel=args.workers, succeeded=ok,
)
