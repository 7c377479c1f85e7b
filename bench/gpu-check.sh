#!/usr/bin/env bash
# GPU check, prepared on the development machine and run once on a GPU machine (see
# ../shared/GPU.md): the worker trains lab 1 part 1's three model shapes (3072-1024xN-10,
# batch 128, ReLU) on CIFAR-10-format data generated here, with K = 1 and K = 4 slots on one GPU
# (each trial on a CUDA stream of its own), and K = 4 again with every trial on the default
# stream (--no-cuda-streams), and prints the GPU, epochs per second and images per second for each.
#
# Build first (development machine):
#   source scripts/setup && cargo build --release --bins && \
#     cargo build --release -p sweep-worker --example write_fixtures
# Smoke test on a CPU: DEVICE=--cpu EPOCHS=1 FIXTURE_N=200 bench/gpu-check.sh
# Then on the GPU machine, from the repository root with target/release/ copied along:
#   bench/gpu-check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=target/release
py=$(command -v python3)
torch_lib=$("$py" -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
epochs="${EPOCHS:-5}"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$bin/examples/write_fixtures" "$work/data" cifar10-bin "${FIXTURE_N:-10000}"

for run in 1 4 4-default-stream; do
  k=${run%%-*}
  extra=""
  [ "$run" = 4-default-stream ] && extra=--no-cuda-streams
  cat >"$work/grid-$run.toml" <<TOML
[sweep]
name = "gpu-check-k$run"
[[experiment]]
name = "cifar_shapes"
dataset = "cifar10"
checkpoint_every = 0
[experiment.fixed]
hidden_width = 1024
batch_size = 128
epochs = $epochs
[experiment.grid]
hidden_layers = [1, 2, 3]
seed = [1, 2, 3, 4]
TOML
  "$bin/coordinator" --grid "$work/grid-$run.toml" --listen 127.0.0.1:0 --out "$work/out-$run" --linger 2s \
    >"$work/coord-$run.out" 2>"$work/coord-$run.log" &
  coord=$!
  addr=""
  for _ in $(seq 1 200); do
    addr=$(sed -n 's/^listening on //p' "$work/coord-$run.out" | head -n1); [ -n "$addr" ] && break; sleep 0.05
  done
  start=$(date +%s.%N)
  "$bin/worker" ${DEVICE:---gpu 0} --slots "$k" $extra --offline --coordinator "http://$addr" \
    --data-dir "$work/data" 2>"$work/worker-$run.log"
  wait "$coord"
  end=$(date +%s.%N)
  grep -m1 'device ready' "$work/worker-$run.log" || true
  "$py" - "$work/out-$run/results.json" "$start" "$end" "$run" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2]); k = sys.argv[4]
ok = [t for t in r["trials"] if t["status"] == "succeeded"]
epochs = sum(len(t["epochs"]) for t in ok)
images = sum(len(t["epochs"]) * (t["train_confusion"] and sum(t["train_confusion"]["counts"]) or 0) for t in ok)
per_shape = {}
for t in ok:
    per_shape.setdefault(t["params"]["hidden_layers"], []).append(sum(e["seconds"] for e in t["epochs"]) / len(t["epochs"]))
print(f"K={k}: {len(ok)}/{len(r['trials'])} trials, {epochs} epochs in {wall:.1f} s wall: "
      f"{epochs / wall:.2f} epochs/s, {images / wall:,.0f} images/s")
for layers, secs in sorted(per_shape.items()):
    print(f"  {layers} hidden layer(s): {sum(secs) / len(secs):.3f} s per epoch (train + eval) per trial")
PY
done
