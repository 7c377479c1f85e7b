"""Overhead per program trial (issue 19): what running a program as a trial costs beyond the
program's own run (lease, spawn, reports, log and checkpoint uploads), ours against Ray Tune.

For each program, one at a time, in the same order:
  - direct: the program run --trials times in a row by this script (subprocess.run): its own
    start-up and work, the time to subtract;
  - sweep: a grid of --trials trials of that program (`coordinator --linger 0s`, one
    `worker --cpu --slots 1`): first lease to last result, from the coordinator's log;
  - ray-tune: Tuner(grid_search) over --trials trials whose function trainable runs the program
    with subprocess.run and reports its exit status, one trial at a time
    (max_concurrent_trials=1), default settings otherwise (a fresh actor per trial) and with
    reuse_actors; fit() timed.
Overhead per trial = (wall / trials) - (direct / trials). Both tools run one trial at a time, so
that per-trial times compare. Programs (--programs): `true`; `python3 -c pass`; `client`, a
Python program that reports 3 epochs through the client library; `lab`, examples/pytorch-lab1
for 1 epoch on a tenth of the split (its checkpoint and final weights uploaded), which needs a
Python with torch (--torch-python) and the real Fashion-MNIST (--data).

    bench/anchors/program_overhead.py --bin-dir target/release --jsonl out.jsonl
"""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime

from common import arguments, record

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLIENT = os.path.join(ROOT, "clients", "python")

CLIENT_PROGRAM = """
import sweep
trial = sweep.trial()
for epoch in range(1, 4):
    trial.report(epoch, test_accuracy=50.0 + epoch, train_loss=1.0 / epoch, my_metric=epoch)
"""


def programs(args):
    """name -> (argv for the sweep's grid, with {seed}; the same argv for a direct run)."""
    client = os.path.join(args.tmp, "client_program.py")
    with open(client, "w") as f:
        f.write(CLIENT_PROGRAM)
    lab = [
        args.torch_python, os.path.join(ROOT, "examples/pytorch-lab1/train.py"),
        "--data", args.data, "--train-fraction", "0.1", "--epochs", "1", "--seed", "{seed}",
    ]
    return {
        "true": ["true"],
        "python-pass": [sys.executable, "-c", "pass"],
        "client": [sys.executable, client],
        "lab": lab,
    }


def environment():
    """What the program gets when run directly or by Ray: the client library, one thread."""
    env = dict(os.environ, PYTHONPATH=CLIENT, OMP_NUM_THREADS="1")
    return env


def direct(argv, trials):
    """Seconds to run argv (with {seed} = 1..trials) trials times in a row."""
    env = environment()
    start = time.perf_counter()
    for seed in range(1, trials + 1):
        run = [a.replace("{seed}", str(seed)) for a in argv]
        subprocess.run(run, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def toml_list(argv):
    return "[" + ", ".join(json.dumps(a) for a in argv) + "]"


def stamp(line):
    """The time of a log line (RFC 3339, nanoseconds cut to microseconds)."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", line)
    frac = (m.group(2) or ".0")[:7]
    return datetime.fromisoformat(m.group(1) + frac + "+00:00").timestamp()


def sweep(args, name, argv):
    """Runs the grid of argv; returns (first lease to last result, coordinator start to exit)."""
    tmp = os.path.join(args.tmp, "sweep-" + name)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    grid, out, log = (os.path.join(tmp, f) for f in ("grid.toml", "out", "coordinator.log"))
    with open(grid, "w") as f:
        f.write(f"""[sweep]
name = "program-overhead"
max_attempts = 1

[[experiment]]
name = "{name}"
dataset = "fashion-mnist"
trial_name = "t_{{seed}}"
program = {toml_list(argv)}
env = {{ PYTHONPATH = {json.dumps(CLIENT)}, OMP_NUM_THREADS = "1" }}

[experiment.fixed]
epochs = 3

[experiment.grid]
seed = [{", ".join(str(s) for s in range(1, args.trials + 1))}]
""")
    bin_dir = args.bin_dir
    start = time.perf_counter()
    coordinator = subprocess.Popen(
        [os.path.join(bin_dir, "coordinator"), "--grid", grid, "--out", out,
         "--listen", "127.0.0.1:0", "--linger", "0s"],
        stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
    )
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
    worker = subprocess.Popen(
        [os.path.join(bin_dir, "worker"), "--cpu", "--coordinator", f"http://{addr[0]}",
         "--name", "w", "--slots", "1", "--threads", "1", "--offline",
         "--data-dir", args.data],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "worker.log"), "w"),
    )
    try:
        rc = coordinator.wait(timeout=3600)
        end = time.perf_counter()
    finally:
        for process in [coordinator, worker]:
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait()
    assert rc == 0, f"the coordinator exited with {rc}; see {log}"
    lines = open(log).read().splitlines()
    leased = [stamp(l) for l in lines if "trial leased" in l]
    ended = [stamp(l) for l in lines if "trial succeeded" in l or "trial failed" in l]
    results = json.load(open(os.path.join(out, "results.json")))
    ok = sum(1 for t in results["trials"] if t["status"] == "succeeded")
    assert ok == args.trials, f"only {ok} of {args.trials} trials succeeded; see {tmp}"
    return max(ended) - min(leased), end - start


def ray_tune(args, argv, reuse):
    """Runs the trials under Ray Tune, one at a time; returns (fit(), init() + fit())."""
    import ray
    from ray import tune

    env = environment()

    def trainable(config):
        run = [a.replace("{seed}", str(config["seed"])) for a in argv]
        done = subprocess.run(run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tune.report({"rc": done.returncode})

    storage = os.path.join(args.tmp, "ray_results")
    shutil.rmtree(storage, ignore_errors=True)
    start = time.perf_counter()
    ray.init()
    tuner = tune.Tuner(
        trainable,
        param_space={"seed": tune.grid_search(list(range(1, args.trials + 1)))},
        tune_config=tune.TuneConfig(
            metric="rc", mode="min", reuse_actors=reuse, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=storage),
    )
    fit = time.perf_counter()
    results = tuner.fit()
    end = time.perf_counter()
    ray.shutdown()
    ok = sum(1 for r in results if r.error is None and r.metrics.get("rc") == 0)
    assert ok == args.trials, f"only {ok} of {args.trials} trials ran the program successfully"
    return end - fit, end - start, ray.__version__


def main():
    p = arguments(__doc__)
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--programs", default="true,python-pass,client,lab")
    p.add_argument("--tools", default="sweep,ray")
    p.add_argument("--torch-python", default="python3")
    p.add_argument("--data", default=os.environ.get(
        "SWEEP_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    args = p.parse_args()
    # Ray wants absolute paths (a relative one is read as a URI without a scheme).
    args.tmp, args.bin_dir = os.path.abspath(args.tmp), os.path.abspath(args.bin_dir)
    os.makedirs(args.tmp, exist_ok=True)
    version = subprocess.run([os.path.join(args.bin_dir, "coordinator"), "--version"],
                             capture_output=True, text=True).stdout.split()[-1]
    every = programs(args)
    rows = []
    for name in args.programs.split(","):
        argv = every[name]
        own = direct(argv, args.trials)
        base = dict(program=name, epochs=0, parallel=1, own_per_trial_ms=round(1000 * own / args.trials, 2))
        rows.append(("direct", name, own, own, 0.0))
        record(args.jsonl, "direct", name, "-", args.trials, own, own, overhead_ms=0.0, **base)
        tools = args.tools.split(",")
        if "sweep" in tools:
            wall, total = sweep(args, name, argv)
            rows.append((f"sweep {version}", name, wall, total, 1000 * (wall - own) / args.trials))
            record(args.jsonl, "sweep", name, version, args.trials, wall, total,
                   overhead_ms=round(1000 * (wall - own) / args.trials, 2), **base)
        if "ray" in tools:
            for reuse in (False, True):
                wall, total, ray_version = ray_tune(args, argv, reuse)
                variant = f"{name}, reuse_actors" if reuse else f"{name}, default"
                rows.append((f"ray-tune {ray_version}", variant, wall, total,
                             1000 * (wall - own) / args.trials))
                record(args.jsonl, "ray-tune", variant, ray_version, args.trials, wall, total,
                       overhead_ms=round(1000 * (wall - own) / args.trials, 2), **base)
    print(f"\n{args.trials} trials per row, one at a time\n")
    print("| tool | program | wall s | per trial ms | overhead per trial ms | with start-up s |")
    print("|---|---|---:|---:|---:|---:|")
    for tool, variant, wall, total, overhead in rows:
        print(f"| {tool} | {variant} | {wall:.2f} | {1000 * wall / args.trials:.1f} "
              f"| {overhead:.1f} | {total:.2f} |")


if __name__ == "__main__":
    main()
