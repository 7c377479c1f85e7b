"""Prints bench/scale/run's calls-per-trial runs (part 4, target/bench/scale/calls-*.json) as a
Markdown table: the calls each trial took, throughput, the coordinator's CPU per trial."""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
RUNS = [("calls-base", "main (one epoch a call)"), ("calls-one", "ours, one epoch a call"),
        ("calls-batch", "ours, up to 15 epochs a call")]
RPCS = ["register", "lease", "report_epoch", "complete", "heartbeat"]
print("| coordinator and load generator | trials | calls per trial (ReportEpoch) | trials/s "
      "| coordinator CPU per trial (us) | ReportEpoch p99 (ms) | Lease p99 (ms) "
      "| peak RSS serving (MiB) | errors | lease expiries |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, label in RUNS:
    path = out / f"{name}.json"
    if not path.exists():
        continue
    r = json.loads(path.read_text())
    c, k, l = r["config"], r["coordinator"], r["latency_us"]
    trials = max(r["trials_completed"], 1)
    calls = sum(l[rpc]["count"] for rpc in RPCS) / trials
    reports = l["report_epoch"]["count"] / trials
    errors = sum(r["errors"].values())
    print(f"| {label} | {c['trials']:,} | {calls:.1f} ({reports:.1f}) | {r['trials_per_second']:.0f} "
          f"| {k['cpu_us_per_trial']:,.0f} | {l['report_epoch']['p99'] / 1e3:.1f} "
          f"| {l['lease_assigned']['p99'] / 1e3:.1f} | {k['peak_rss_serving_bytes'] / 2**20:.0f} "
          f"| {errors} | {r['lease_expiries']} |")
load = out / "calls-load.txt"
if load.exists():
    print()
    print(f"uptime after the runs: {load.read_text().strip()}")
