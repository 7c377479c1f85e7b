"""Prints bench/scale/run's results (target/bench/scale/) as Markdown tables."""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
print("| trials in the grid | start to listening (s) | RSS then (MiB) | peak RSS (MiB) | database (MiB) |")
print("|---:|---:|---:|---:|---:|")
for line in (out / "expansion.jsonl").read_text().splitlines():
    r = json.loads(line)
    print(f"| {r['trials']:,} | {r['startup_s']:.2f} | {r['rss_mib']:.0f} | {r['peak_mib']:.0f} | {r['db_mib']:.0f} |")
print()

mib = lambda b: b / 2**20
print("| workers | trials | trials/s | epoch reports/s | metric points/s | coordinator CPU per trial (us) "
      "| Lease p50 / p99 (ms) | ReportEpoch p99 (ms) | peak RSS serving (MiB) | database + WAL (MiB) | lease expiries "
      "| calls throttled |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in ["w10-t10k", "w100-t10k", "w1000-t10k", "w1000-t100k", "w1000-t100k-batch", "latency",
             "baseline-w1000-t5000", "w1000-t5000"]:
    path = out / f"{name}.json"
    if not path.exists():
        continue
    r = json.loads(path.read_text())
    c, k, l = r["config"], r["coordinator"], r["latency_us"]
    label = f"{c['workers']:,}" + (f" ({c['epoch_time_ms']:.0f} ms epochs)" if c["epoch_time_ms"] else "")
    label += " (baseline)" if name.startswith("baseline") else ""
    label += f" (up to {c['epochs_per_call']} epochs a call)" if c.get("epochs_per_call", 1) > 1 else ""
    print(f"| {label} | {c['trials']:,} | {r['trials_per_second']:.0f} | {r['epoch_reports_per_second']:,.0f} "
          f"| {r['metric_points_per_second']:,.0f} | {k['cpu_us_per_trial']:,.0f} "
          f"| {l['lease_assigned']['p50'] / 1e3:.1f} / {l['lease_assigned']['p99'] / 1e3:.1f} "
          f"| {l['report_epoch']['p99'] / 1e3:.1f} | {mib(k['peak_rss_serving_bytes']):.0f} "
          f"| {mib(k['db_bytes']):.0f} + {mib(k['wal_bytes']):.0f} | {r['lease_expiries']} "
          f"| {r.get('throttled', 0):,} |")
