"""The machine's fp32 matmul peak as libtorch reaches it: the best of several large square
matmuls (and the lab's largest layer shape), in GFLOP/s.

    python bench/matmul_peak.py --threads 2
"""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=0)
args = p.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
best = 0.0
for (m, k, n) in [(2048, 2048, 2048), (1024, 1024, 1024), (128, 3072, 1024), (3072, 128, 1024)]:
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    reps = max(3, int(2e10 / (2 * m * k * n)))
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    gflops = 2 * m * k * n * reps / (time.perf_counter() - t) / 1e9
    print(json.dumps({"impl": "matmul", "shape": [m, k, n], "threads": torch.get_num_threads(), "gflops": round(gflops, 1)}), flush=True)
    best = max(best, gflops)
print(json.dumps({"impl": "matmul-peak", "threads": torch.get_num_threads(), "gflops": round(best, 1)}), flush=True)
