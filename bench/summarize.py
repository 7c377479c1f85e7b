"""Turns bench/run's JSON lines into the Markdown tables of BENCHMARKS.md."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
peak = next((r["gflops"] for r in rows if r["impl"] == "matmul-peak"), None)
threads = next((r["threads"] for r in rows if "threads" in r), "?")

print(f"fp32 matmul peak (best of the shapes in bench/matmul_peak.py, {threads} threads): **{peak} GFLOP/s**\n")
print("### Lab 1 part 2's model (784-256-10, batch 64) on the real Fashion-MNIST, 42 000 training images\n")
print("| implementation | s/epoch (train) | s/epoch (train + test eval) | samples/s | GFLOP/s | speed-up vs lab pipeline |")
print("|---|---:|---:|---:|---:|---:|")
fm = [r for r in rows if r.get("dataset") == "fashion-mnist"]
lab = next((r for r in fm if r["impl"] == "pytorch-lab-pipeline"), None)
for r in fm:
    ratio = f"{lab['epoch_s'] / r['epoch_s']:.2f}x" if lab else "-"
    print(f"| {r['impl']} | {r['train_s']:.3f} | {r['epoch_s']:.3f} | {r['samples_per_s']} | {r['gflops']} | {ratio} |")
pre = next((r for r in fm if r["impl"] == "pytorch-preloaded"), None)
ftz = next((r for r in fm if r["impl"] == "pytorch-preloaded-ftz"), None)
ours = next((r for r in fm if r["impl"] == "sweep"), None)
if pre and ours:
    line = f"\nsweep vs pre-loaded PyTorch (train + eval): **{pre['epoch_s'] / ours['epoch_s']:.2f}x**"
    if ftz:
        line += f" (**{ftz['epoch_s'] / ours['epoch_s']:.2f}x** against it with subnormals flushed)"
    if lab:
        line += f"; vs the lab's pipeline: **{lab['epoch_s'] / ours['epoch_s']:.2f}x**"
    print(line + ".\n")

print("### Lab 1 part 1's shapes (3072-1024xN-10, batch 128), 35 000 CIFAR-sized random images\n")
print("| model | implementation | s/epoch (train) | samples/s | GFLOP/s | % of matmul peak |")
print("|---|---|---:|---:|---:|---:|")
for r in rows:
    if r.get("dataset") == "cifar10":
        layers = len(r["dims"]) - 2
        pct = f"{100 * r['gflops'] / peak:.0f} %" if peak else "-"
        print(f"| {layers} hidden | {r['impl']} | {r['train_s']:.3f} | {r['samples_per_s']} | {r['gflops']} | {pct} |")
rss = [r for r in rows if r["impl"] == "worker-rss"]
if rss:
    print("\n### Peak RSS of one worker process (CPU, Fashion-MNIST, lab 1 part 2's model)\n")
    print("| slots | peak RSS (MiB) |")
    print("|---:|---:|")
    for r in rss:
        print(f"| {r['slots']} | {r['peak_rss_mib']} |")
