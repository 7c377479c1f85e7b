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


print("| coordinator | trials | trials/s | CPU per trial (us) | peak RSS serving (MiB) "
      "| peak RSS with the final outputs (MiB) | results.json (MiB) | `coordinator report`: wall s, peak RSS (MiB) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name in ["baseline", "ours", "million"]:
    path = out / f"{name}.json"
    if not path.exists():
        continue
    r = json.loads(path.read_text())
    c, k = r["config"], r["coordinator"]
    size = None
    for line in (out / f"{name}.txt").read_text().splitlines():
        if line.endswith("results.json"):
            size = int(line.split()[0])
    wall, peak = report_time(name)
    label = "baseline (main)" if name == "baseline" else "ours"
    print(f"| {label} | {c['trials']:,} | {r['trials_per_second']:.0f} | {k['cpu_us_per_trial']:,.0f} "
          f"| {mib(k['peak_rss_serving_bytes']):.0f} | {mib(k['peak_rss_bytes']):.0f} "
          f"| {mib(size or 0):.0f} | {wall:.1f} s, {peak:.0f} |")
