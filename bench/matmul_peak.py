"""The machine's fp32 matmul peak as libtorch reaches it: the best of several large square
matmuls (and the lab's largest layer shape), in GFLOP/s.

    python bench/matmul_peak.py --threads 2
    python bench/matmul_peak.py --threads 2 --step-products   # also the trainer's own products

With --step-products it also times, for each layer shape of lab 1 part 1 (batch 128), the three
products of a training step exactly as the trainer issues them: forward x @ W^T, weight gradient
dY^T @ X, input gradient dY @ W (into preallocated outputs), and the step's total at those speeds.
"""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=0)
p.add_argument("--step-products", action="store_true")
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

if args.step_products:
    def rate(f, flops):
        for _ in range(3):
            f()
        reps = max(5, int(1e10 / flops))
        t = time.perf_counter()
        for _ in range(reps):
            f()
        return flops * reps / (time.perf_counter() - t) / 1e9

    batch = 128
    for hidden in (1, 2, 3):
        dims = [3072] + [1024] * hidden + [10]
        step_s, step_flops = 0.0, 0.0
        for i, (n_in, n_out) in enumerate(zip(dims, dims[1:])):
            x, w, dy = torch.randn(batch, n_in), torch.randn(n_out, n_in), torch.randn(batch, n_out)
            y, gw, gx = torch.empty(batch, n_out), torch.empty(n_out, n_in), torch.empty(batch, n_in)
            flops = 2.0 * batch * n_in * n_out
            products = {"forward": lambda: torch.mm(x, w.t(), out=y),
                        "weight_grad": lambda: torch.mm(dy.t(), x, out=gw)}
            if i > 0:
                products["input_grad"] = lambda: torch.mm(dy, w, out=gx)
            rates = {k: rate(f, flops) for k, f in products.items()}
            step_s += sum(flops / (r * 1e9) for r in rates.values())
            step_flops += flops * len(rates)
            print(json.dumps({"impl": "matmul-step-product", "shape": [n_in, n_out], "batch": batch,
                              "gflops": {k: round(v, 1) for k, v in rates.items()}}), flush=True)
        print(json.dumps({"impl": "matmul-step", "hidden_layers": hidden, "dims": dims, "batch": batch,
                          "step_ms": round(1e3 * step_s, 2), "gflops": round(step_flops / step_s / 1e9, 1),
                          "threads": torch.get_num_threads()}), flush=True)
