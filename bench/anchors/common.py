"""Shared by the anchors: the trivial work every side does, and the JSON line each side writes."""
import json
import os
import platform
import time


def trivial(x, epochs):
    """The trivial "training" of trial `x`: per epoch a made-up loss and accuracy, no sleep."""
    for epoch in range(1, epochs + 1):
        yield epoch, 2.0 / epoch, 1.0 - 1.0 / (epoch + 1) + x * 1e-6


def record(path, tool, variant, version, trials, wall_s, total_s, **extra):
    """Appends one result to `path` as a JSON line and prints it."""
    row = {
        "tool": tool,
        "variant": variant,
        "version": version,
        "trials": trials,
        "wall_s": round(wall_s, 3),
        "total_s": round(total_s, 3),
        "per_trial_ms": round(1000 * wall_s / trials, 2),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
    line = json.dumps(row)
    print(line, flush=True)
    with open(path, "a") as f:
        f.write(line + "\n")


def arguments(description):
    """The options every anchor takes."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--jsonl", required=True, help="file the result line is appended to")
    p.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"), help="scratch folder")
    return p
