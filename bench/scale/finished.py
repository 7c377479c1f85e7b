"""Prints bench/scale/finished's results (target/bench/finished/) as a Markdown table."""
import json
import pathlib
import re
import sys

out = pathlib.Path(sys.argv[1])
mib = lambda b: b / 2**20


def report_time(name):
    """(wall seconds, peak RSS MiB) of `coordinator report` from its `time -v` output."""
    text = (out / f"{name}.report.time").read_text()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = sum(float(x) * 60**i for i, x in enumerate(reversed(wall.split(":"))))
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    return seconds, peak


print("| coordinator | trials | epochs | trials/s | CPU per trial (us) | peak RSS serving (MiB) "
      "| peak RSS with the final outputs (MiB) | results.json (MiB) | database (MiB) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in ["baseline", "ours", "million-baseline", "million"]:
    path = out / f"{name}.json"
    if not path.exists():
        continue
    r = json.loads(path.read_text())
    c, k = r["config"], r["coordinator"]
    sizes = {}
    for line in (out / f"{name}.txt").read_text().splitlines():
        for what in ["results.json", "state"]:
            if line.endswith(what):
                sizes[what] = int(line.split()[0])
    label = "baseline (main)" if name.endswith("baseline") else "ours"
    print(f"| {label} | {c['trials']:,} | {c.get('epochs', 30)} | {r['trials_per_second']:.0f} "
          f"| {k['cpu_us_per_trial']:,.0f} | {mib(k['peak_rss_serving_bytes']):.0f} "
          f"| {mib(k['peak_rss_bytes']):.0f} | {mib(sizes.get('results.json', 0)):.0f} "
          f"| {mib(sizes.get('state', 0)):.0f} |")

print()
print("| `coordinator report` by | of | wall (s) | peak RSS (MiB) |")
print("|---|---|---:|---:|")
for name, of in [("baseline", "ours"), ("ours", "ours"), ("million", "million")]:
    if (out / f"{name}.report.time").exists():
        wall, peak = report_time(name)
        label = "baseline (main)" if name == "baseline" else "ours"
        print(f"| {label} | {of}'s results.json | {wall:.1f} | {peak:.0f} |")

print()
print("| sweep | RSS samples | peak VmHWM (MiB, the last sample) | VmRSS at the last sample (MiB) | last sample (s) |")
print("|---|---:|---:|---:|---:|")
for name in ["baseline", "ours", "million-baseline", "million"]:
    path = out / f"{name}.rss"
    if not path.exists():
        continue
    rows = [line.split() for line in path.read_text().splitlines() if len(line.split()) == 3]
    if rows:
        t, rss, hwm = rows[-1]
        print(f"| {name} | {len(rows)} | {int(hwm) / 1024:.0f} | {int(rss) / 1024:.0f} | {t} |")
