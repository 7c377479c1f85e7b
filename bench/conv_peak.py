"""The device's convolution peak as PyTorch reaches it: the best of several 3x3 convolutions of
CIFAR-sized CNN layers (batch 128, forward only), in GFLOP/s, with cuDNN's default math (TF32
allowed on Ampere and later, as in libtorch and the worker) and with TF32 off (strict fp32).

    python bench/conv_peak.py --device cuda
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--device", default="cpu")
p.add_argument("--threads", type=int, default=0)
args = p.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
dev = torch.device(args.device)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def best(shapes):
    top = 0.0
    for (c, out, hw) in shapes:
        x = torch.randn(128, c, hw, hw, device=dev)
        w = torch.randn(out, c, 3, 3, device=dev)
        flops = 2.0 * 128 * out * c * 9 * hw * hw
        for _ in range(3):
            F.conv2d(x, w, padding=1)
        sync()
        reps = max(3, int((2e12 if dev.type == "cuda" else 2e10) / flops))
        t = time.perf_counter()
        for _ in range(reps):
            F.conv2d(x, w, padding=1)
        sync()
        top = max(top, flops * reps / (time.perf_counter() - t) / 1e9)
    return top


shapes = [(64, 64, 32), (128, 128, 16), (256, 256, 8), (256, 256, 16)]
result = {"device": args.device, "conv_gflops_default": round(best(shapes), 1)}
if dev.type == "cuda":
    result["cudnn_allow_tf32_default"] = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    result["conv_gflops_strict_fp32"] = round(best(shapes), 1)
    result["gpu"] = torch.cuda.get_device_name(0)
print(json.dumps(result), flush=True)
