"""Issue 17's TPE benchmark through the live coordinator (BENCHMARKS.md, "TPE, 48 trials").

The space of bench/anchors/fashion-space.toml (216 configurations, each trained for real
once and recorded in bench/anchors/data/fashion-space.results.json.gz) becomes a sampled
experiment (`[experiment.sample]`, every grid key a `choice`, the same fixed keys); the real
coordinator runs it, driven by the load generator's simulated workers, which report for each
leased trial the metrics recorded for its configuration (`loadgen --grid G --metrics-from R`).
So TPE's proposals are the scheduler's, made at run time from the results it has, with the
workers leasing concurrently.

For each method (tpe, random), worker count (1, 4) and sampler seed, one sweep of --trials
trials; recorded per run: the best test accuracy found, the distinct configurations, the
trials. Beside them, in the same run: `search-bench` (the same samplers replayed sequentially
over the table, and the target: the 95th percentile of 200 random trials) and, when a Python
with Optuna is given (--optuna-python), Optuna's TPESampler on the same table, sequentially
and with --workers trials in flight (ask/tell, the oldest told first).

Prints a Markdown table; one JSON object per run goes to --jsonl.

  python3 bench/search/live.py                   # 40 sweeps, about 4 minutes on 2 cores
  python3 bench/search/live.py --seeds 3 --methods tpe
"""

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def toml_value(v):
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def sampled_grid(space_toml, method, seed, trials):
    """The grid file of space_toml with its [experiment.grid] sampled: every key a choice."""
    with open(space_toml, "rb") as f:
        doc = tomllib.load(f)
    sweep = doc["sweep"]
    [e] = doc["experiment"]
    lines = ["[sweep]"] + [f"{k} = {toml_value(v)}" for k, v in sweep.items()]
    lines += ["", "[[experiment]]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in e.items() if not isinstance(v, dict)]
    lines += ["", "[experiment.fixed]"] + [f"{k} = {toml_value(v)}" for k, v in e["fixed"].items()]
    lines += ["", "[experiment.sample]", f"trials = {trials}", f'method = "{method}"', f"seed = {seed}"]
    lines += ["", "[experiment.sample.space]"]
    lines += [f"{k} = {{ choice = {toml_value(v)} }}" for k, v in e["grid"].items()]
    return "\n".join(lines) + "\n", len(e["grid"])


def config_key(params):
    return json.dumps({k: v for k, v in sorted(params.items()) if k != "seed"})


def live(args, table, method, workers, seed):
    """One sweep through the coordinator; what it found."""
    work = tempfile.mkdtemp(prefix=f"tpe-live-{method}-{workers}-{seed}-", dir=args.tmp)
    grid = os.path.join(work, "sampled.toml")
    text, _ = sampled_grid(args.space_grid, method, seed, args.trials)
    with open(grid, "w") as f:
        f.write(text)
    run = os.path.join(work, "run")
    cmd = [
        os.path.join(args.bin_dir, "loadgen"),
        "--grid", grid, "--metrics-from", table, "--workers", str(workers),
        "--epoch-time", args.epoch_time, "--keep", run, "--json", os.path.join(work, "load.json"),
        "--timeout", "10m",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    with open(os.path.join(run, "out", "results.json")) as f:
        results = json.load(f)
    trials = results["trials"]
    best = max(t["test_accuracy"] for t in trials if t["test_accuracy"] is not None)
    distinct = len({config_key(t["params"]) for t in trials})
    shutil.rmtree(work)
    return {
        "tool": f"sweep-{method}-live",
        "workers": workers,
        "seed": seed,
        "trials": len(trials),
        "succeeded": sum(t["status"] == "succeeded" for t in trials),
        "distinct": distinct,
        "best": best,
    }


def replayed(args, table):
    """search-bench's lines: our samplers replayed sequentially, and the random target."""
    cmd = [os.path.join(args.bin_dir, "search-bench"), "--results", table, "--seeds", str(args.seeds),
           "--tpe", str(args.trials)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def optuna(args, table):
    """Optuna's TPESampler on the same table: sequential, and with --workers trials in flight."""
    rows = []
    for workers in sorted({1, max(args.workers)}):
        cmd = [args.optuna_python, os.path.join(ROOT, "bench", "anchors", "search_anchors.py"),
               "--space", table, "--seeds", str(args.seeds), "--tpe", str(args.trials), "--tools", "tpe",
               "--tpe-workers", str(workers)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return rows


def table_markdown(rows, trials, seeds):
    med = statistics.median
    target = {r["seed"]: r["random_at_percentile"] for r in rows if r["tool"] == "search-bench"}
    print(f"| {trials} trials, space of 216, median over {seeds} sampler seeds | best test acc. % | "
          f"seeds at or above the target | distinct configurations |")
    print("|---|---:|---:|---:|")
    print(f"| target: 95th percentile of 200 random trials | {med(target.values()):.2f} | | |")

    def line(name, picked, best, distinct):
        if not picked:
            return
        hit = sum(best(r) >= target[r["seed"]] for r in picked)
        d = f"{med(distinct(r) for r in picked):g}" if distinct else f"{trials}"
        print(f"| {name} | {med(best(r) for r in picked):.2f} | {hit} of {len(picked)} | {d} |")

    bench = [r for r in rows if r["tool"] == "search-bench"]
    line("random, replayed (search-bench)", bench, lambda r: r["random_best_first"], None)
    for w in sorted({r["workers"] for r in rows if r["tool"] == "sweep-random-live"}):
        picked = [r for r in rows if r["tool"] == "sweep-random-live" and r["workers"] == w]
        line(f"random, live, {w} worker{'s' * (w > 1)}", picked, lambda r: r["best"], lambda r: r["distinct"])
    line("sweep TPE, replayed (search-bench)", bench, lambda r: r["tpe_best"], None)
    for w in sorted({r["workers"] for r in rows if r["tool"] == "sweep-tpe-live"}):
        picked = [r for r in rows if r["tool"] == "sweep-tpe-live" and r["workers"] == w]
        line(f"**sweep TPE, live, {w} worker{'s' * (w > 1)}**", picked, lambda r: r["best"],
             lambda r: r["distinct"])
    for w in sorted({r.get("workers", 1) for r in rows if r["tool"] == "optuna-tpe"}):
        picked = [r for r in rows if r["tool"] == "optuna-tpe" and r.get("workers", 1) == w]
        line(f"Optuna TPESampler, {w} in flight", picked, lambda r: r["tpe_best"], lambda r: r["distinct"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"),
                   help="where loadgen, coordinator and search-bench are")
    p.add_argument("--table", default=os.path.join(ROOT, "bench", "anchors", "data", "fashion-space.results.json.gz"))
    p.add_argument("--space-grid", default=os.path.join(ROOT, "bench", "anchors", "fashion-space.toml"))
    p.add_argument("--seeds", type=int, default=10, help="sampler seeds 0..SEEDS-1")
    p.add_argument("--trials", type=int, default=48)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    p.add_argument("--methods", nargs="+", default=["tpe", "random"])
    p.add_argument("--epoch-time", default="50ms", help="each simulated epoch (so that workers overlap)")
    p.add_argument("--optuna-python", help="a Python with Optuna (bench/anchors/requirements.txt)")
    p.add_argument("--jsonl", default=os.path.join(ROOT, "target", "bench", "tpe-live.jsonl"))
    p.add_argument("--tmp", default=None)
    args = p.parse_args()
    os.makedirs(os.path.dirname(args.jsonl), exist_ok=True)
    # loadgen reads the gzipped table; search-bench and Optuna's anchor too.
    table = args.table
    rows = [dict(r, tool="search-bench") for r in replayed(args, table)]
    for method in args.methods:
        for workers in args.workers:
            for seed in range(args.seeds):
                r = live(args, table, method, workers, seed)
                print(json.dumps(r), file=sys.stderr, flush=True)
                rows.append(r)
    if args.optuna_python:
        rows += optuna(args, table)
    with open(args.jsonl, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    table_markdown(rows, args.trials, args.seeds)


if __name__ == "__main__":
    main()
