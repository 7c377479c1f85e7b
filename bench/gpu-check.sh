#!/usr/bin/env bash
# GPU check, prepared on the development machine and run once on a GPU machine (see
# ../shared/GPU.md). Four parts, each printed as it finishes:
#  1. mlp: lab 1 part 1's three model shapes (3072-1024xN-10, batch 128, ReLU) on CIFAR-10-format
#     data generated here, with K = 1 and K = 4 slots on one GPU (each trial on a CUDA stream of
#     its own) and K = 4 on the default stream (--no-cuda-streams): epochs/s, images/s, and how
#     far each trial's final accuracy moved between K = 1 and K = 4 (streams must not mix trials).
#  2. cnn: lab 2's four VGG-style CNNs (examples/lab2-cnn-cifar10.toml) with SGD, K = 1, then the
#     same models in pre-loaded PyTorch on the same GPU and data (bench/pytorch_cnn.py), and the
#     device's measured convolution peak (bench/conv_peak.py): s/epoch and GFLOP/s side by side.
#  3. auto: the same CNNs with random crop and flip (augmentation on the device), --slots auto.
#  4. program: a user's PyTorch program as the trial (issue 19) under `worker --gpu 0 --slots 2`:
#     what CUDA_VISIBLE_DEVICES and torch.cuda show it, and its reported metrics.
#  5. lab1: lab1.toml's part 2 (real Fashion-MNIST from $FASHION_MNIST) on the GPU, to set beside
#     the CPU's accuracies in docs/results/lab1_part2.md.
#  6. fidelity: two CNNs (VGG-style, small ResNet) in sweep and in PyTorch on the same GPU, 3
#     seeds each, FIDELITY_EPOCHS (10) epochs on real Fashion-MNIST: final test accuracies.
#  7. plan: `coordinator plan --calibrate --workers gpu:1` of lab1.toml and of a shortened
#     examples/lab2-cnn-cifar10.toml, each beside its real run on the GPU (one trial at a time).
# PARTS="mlp cnn auto program" picks parts; EPOCHS (default 3) and FIXTURE_N (images per CIFAR
# batch file, 5 train files + 1 test; default 10000) size them. Logs and results.json files are
# copied to $LOGS when it is set.
#
# Build first (development machine):
#   source scripts/setup && cargo build --release --bins && \
#     cargo build --release -p sweep-worker --example write_fixtures
# Smoke test on a CPU: DEVICE=--cpu EPOCHS=1 FIXTURE_N=200 bench/gpu-check.sh
# Then on the GPU machine, from the repository root with the binaries copied along (BIN names
# their folder, default target/release):
#   bench/gpu-check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
bin=${BIN:-target/release}
py=$(command -v python3)
torch_lib=$("$py" -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
epochs="${EPOCHS:-3}"
device="${DEVICE:---gpu 0}"
torch_device=cuda
[ "$device" = --cpu ] && torch_device=cpu
parts="${PARTS:-mlp cnn auto program lab1 fidelity plan}"
fashion="${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
fid_epochs="${FIDELITY_EPOCHS:-10}"
work=$(mktemp -d)
save_logs() {
  if [ -n "${LOGS:-}" ]; then
    mkdir -p "$LOGS"
    (cd "$work" && find . -name '*.log' -o -name '*.out' -o -name results.json -o -name '*.toml' -o -name 'prog-*.txt') |
      while read -r f; do mkdir -p "$LOGS/$(dirname "$f")"; cp "$work/$f" "$LOGS/$f"; done
  fi
}
trap 'kill $(jobs -p) 2>/dev/null || true; save_logs; rm -rf "$work"' EXIT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" -c 'import torch; print("python torch", torch.__version__, "cuda available:", torch.cuda.is_available())'
"$bin/examples/write_fixtures" "$work/data" cifar10-bin "${FIXTURE_N:-10000}"

# sweep NAME WORKER-ARGS...: runs $work/grid-NAME.toml with one worker, then summarises it.
sweep() {
  local name=$1
  shift
  # shellcheck disable=SC2086
  "$bin/coordinator" --grid "$work/grid-$name.toml" ${coord_extra:-} --listen 127.0.0.1:0 --out "$work/out-$name" --linger 2s \
    >"$work/coord-$name.out" 2>"$work/coord-$name.log" &
  local coord=$! addr=""
  for _ in $(seq 1 200); do
    addr=$(sed -n 's/^listening on //p' "$work/coord-$name.out" | head -n1); [ -n "$addr" ] && break; sleep 0.05
  done
  local start end
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$bin/worker" $device "$@" --offline --coordinator "http://$addr" --data-dir "$work/data" \
    2>"$work/worker-$name.log" || echo "worker exited with $?"
  wait "$coord" || echo "coordinator exited with $?"
  end=$(date +%s.%N)
  grep -m1 'device ready' "$work/worker-$name.log" || true
  grep -m2 'slots auto' "$work/worker-$name.log" || true
  "$py" - "$work/out-$name/results.json" "$start" "$end" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2]); name = sys.argv[4]
ok = [t for t in r["trials"] if t["status"] == "succeeded"]
epochs = sum(len(t["epochs"]) for t in ok)
images = sum(len(t["epochs"]) * (t["train_confusion"] and sum(t["train_confusion"]["counts"]) or 0) for t in ok)
print(f"{name}: {len(ok)}/{len(r['trials'])} trials succeeded, {epochs} epochs in {wall:.1f} s wall: "
      f"{epochs / wall:.2f} epochs/s, {images / wall:,.0f} images/s")
for t in r["trials"]:
    if t["status"] != "succeeded":
        print(f"  {t['name']}: {t['status']} {t.get('error', '')}")
per = {}
for t in ok:
    p = t["params"]
    key = p["model"] if p.get("model", "mlp") != "mlp" else f"{p['hidden_layers']} hidden layer(s)" if "hidden_layers" in p else t["name"]
    later = t["epochs"][1:] or t["epochs"]  # the first epoch holds start-up costs
    per.setdefault(key, []).append((sum(e["seconds"] for e in later) / len(later), t["epochs"][-1]["test_accuracy"]))
for key, v in per.items():
    print(f"  {key}: {sum(s for s, _ in v) / len(v):.3f} s/epoch (train + test, epochs 2+), "
          f"final test accuracy {', '.join(f'{a:.2f}' for _, a in v)}")
json.dump({t["name"]: t["epochs"][-1]["test_accuracy"] for t in ok}, open(sys.argv[1] + ".final", "w"))
PY
}

cnn_models=(
  "conv(32,3,p=1) bn relu maxpool(2) conv(64,3,p=1) bn relu maxpool(2) gap linear(10)"
  "conv(64,3,p=1) bn relu maxpool(2) conv(128,3,p=1) bn relu maxpool(2) gap linear(10)"
  "conv(32,3,p=1) bn relu maxpool(2) conv(64,3,p=1) bn relu maxpool(2) conv(128,3,p=1) bn relu maxpool(2) gap linear(10)"
  "conv(64,3,p=1) bn relu maxpool(2) conv(128,3,p=1) bn relu maxpool(2) conv(256,3,p=1) bn relu maxpool(2) gap linear(10)"
)
cnn_grid() { # NAME EXTRA-GRID-LINES
  {
    printf '[sweep]\nname = "gpu-check-%s"\n[[experiment]]\nname = "cnn"\ndataset = "cifar10"\ncheckpoint_every = 0\n' "$1"
    printf '[experiment.fixed]\noptimizer = "sgd"\nmomentum = 0.9\nlearning_rate = 0.01\nbatch_size = 128\nepochs = %s\n' "$epochs"
    printf '[experiment.grid]\nmodel = [\n'
    for m in "${cnn_models[@]}"; do printf '  "%s",\n' "$m"; done
    printf ']\n%s\n' "$2"
  } >"$work/grid-$1.toml"
}

for part in $parts; do
  echo "== $part"
  # A part that fails is reported and the next one runs: a GPU's time is too short to lose.
  ( case $part in
  mlp)
    for run in 1 4 4-default-stream; do
      k=${run%%-*}
      extra=""
      [ "$run" = 4-default-stream ] && extra=--no-cuda-streams
      cat >"$work/grid-mlp-k$run.toml" <<TOML
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
      # shellcheck disable=SC2086
      sweep "mlp-k$run" --slots "$k" $extra
    done
    "$py" - "$work"/out-mlp-k{1,4,4-default-stream}/results.json.final <<'PY'
import json, sys
base = json.load(open(sys.argv[1]))
for f in sys.argv[2:]:
    other = json.load(open(f))
    diffs = [abs(base[k] - other[k]) for k in base if k in other]
    print(f"final test accuracy, K=1 against {f.split('/')[-2]}: {len(diffs)} trials, largest difference {max(diffs):.3f} points")
PY
    ;;
  cnn)
    cnn_grid cnn-k1 ""
    sweep cnn-k1 --slots 1
    model_args=()
    for m in "${cnn_models[@]}"; do model_args+=(--model "$m"); done
    "$py" bench/pytorch_cnn.py --data "$work/data/cifar-10-batches-bin" --device "$torch_device" \
      --epochs "$epochs" --lr 0.01 "${model_args[@]}" 2>&1 | tee "$work/pytorch-cnn.out"
    "$py" bench/conv_peak.py --device "$torch_device" 2>&1 | tee "$work/conv-peak.out"
    "$py" - "$work/out-cnn-k1/results.json" <<'PY'
import json, sys
sys.path.insert(0, "bench")
from model_spec import forward_flops
r = json.load(open(sys.argv[1]))
for t in r["trials"]:
    if t["status"] != "succeeded":
        continue
    later = t["epochs"][1:] or t["epochs"]
    secs = sum(e["seconds"] for e in later) / len(later)
    n = sum(t["train_confusion"]["counts"])
    print(json.dumps({"impl": "sweep", "model": t["params"]["model"], "train_images": n, "epoch_s": round(secs, 4),
                      "images_per_s": round(n / secs), "gflops": round(3 * forward_flops(t["params"]["model"], (3, 32, 32)) * n / secs / 1e9, 1)}))
PY
    ;;
  auto)
    cnn_grid cnn-auto 'random_crop = [0, 4]
random_flip = [0.0, 0.5]'
    sweep cnn-auto --slots auto
    ;;
  program)
    cat >"$work/gpu_prog.py" <<'PY'
import os, sys, time
import torch
import sweep
trial = sweep.trial()
dev = "cuda" if torch.cuda.is_available() else "cpu"
with open(os.path.join(sys.argv[1], f"prog-{trial.seed}.txt"), "w") as f:
    f.write(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r} device_count={torch.cuda.device_count()} "
            f"device={dev} name={torch.cuda.get_device_name(0) if dev == 'cuda' else '-'}\n")
torch.manual_seed(trial.seed)
x = torch.randn(20000, 64, device=dev); y = (x[:, 0] > 0).long()
net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2)).to(dev)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(1, trial.epochs + 1):
    for i in range(0, 16000, 128):
        loss = torch.nn.functional.cross_entropy(net(x[i:i + 128]), y[i:i + 128])
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        acc = (net(x[16000:]).argmax(1) == y[16000:]).float().mean().item() * 100
    if trial.report(epoch, test_accuracy=acc, train_loss=loss.item()):
        break
PY
    cat >"$work/grid-program.toml" <<TOML
[sweep]
name = "gpu-check-program"
[[experiment]]
name = "program"
dataset = "cifar10"
program = ["python3", "$work/gpu_prog.py", "$work"]
workdir = "$work"
env = { PYTHONPATH = "$root/clients/python", PYTHONUNBUFFERED = "1" }
[experiment.fixed]
epochs = $epochs
[experiment.grid]
seed = [1, 2]
TOML
    sweep program --slots 2
    cat "$work"/prog-*.txt || echo "the program wrote nothing"
    ;;
  lab1)
    # Lab 1 part 2 as lab1.toml has it (real Fashion-MNIST, 5 trials x 30 epochs): the GPU's
    # accuracies beside the CPU's in docs/results/lab1_part2.md.
    [ -f "$fashion/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $fashion (FASHION_MNIST)"; exit 1; }
    cp "$fashion"/*.gz "$work/data/"
    cp lab1.toml "$work/grid-lab1.toml"
    coord_extra="--only p2_fashion_mnist" sweep lab1 --slots 5
    ;;
  fidelity)
    # The same CNNs in sweep and in PyTorch on the same GPU, 3 seeds each, real Fashion-MNIST:
    # mean final test accuracy side by side (issue 18's fidelity check).
    [ -f "$fashion/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $fashion (FASHION_MNIST)"; exit 1; }
    cp "$fashion"/*.gz "$work/data/"
    fid_models=(
      "conv(16,3,p=1) bn relu maxpool(2) conv(32,3,p=1) bn relu maxpool(2) flatten dropout(0.25) linear(10)"
      "conv(16,3,p=1) bn relu res(16) res(32,s=2) gap linear(10)"
    )
    {
      printf '[sweep]\nname = "gpu-check-fidelity"\n[[experiment]]\nname = "cnn"\ndataset = "fashion-mnist"\ncheckpoint_every = 0\n'
      printf '[experiment.fixed]\nlearning_rate = 0.003\nbatch_size = 128\nepochs = %s\n' "$fid_epochs"
      printf '[experiment.grid]\nseed = [1, 2, 3]\nmodel = [\n'
      for m in "${fid_models[@]}"; do printf '  "%s",\n' "$m"; done
      printf ']\n'
    } >"$work/grid-fidelity.toml"
    sweep fidelity --slots 6
    model_args=()
    for m in "${fid_models[@]}"; do model_args+=(--model "$m"); done
    "$py" bench/pytorch_cnn.py --data "$work/data" --device "$torch_device" --optimizer adam --lr 0.003 \
      --epochs "$fid_epochs" --seed 1 --seed 2 --seed 3 "${model_args[@]}" 2>&1 | tee "$work/pytorch-fidelity.out"
    ;;
  plan)
    # `coordinator plan --calibrate --workers gpu:1` against the real run on one GPU, one trial
    # at a time: lab1.toml whole (part 1 on the generated CIFAR-10 files, part 2 on real
    # Fashion-MNIST) and examples/lab2-cnn-cifar10.toml with PLAN_CNN_EPOCHS (5) epochs.
    [ -f "$fashion/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $fashion (FASHION_MNIST)"; exit 1; }
    cp "$fashion"/*.gz "$work/data/"
    cp lab1.toml "$work/grid-plan-lab1.toml"
    sed "s/^epochs = 15/epochs = ${PLAN_CNN_EPOCHS:-5}/" examples/lab2-cnn-cifar10.toml >"$work/grid-plan-cnn.toml"
    for g in plan-lab1 plan-cnn; do
      echo "== plan $g"
      "$bin/coordinator" plan --grid "$work/grid-$g.toml" --calibrate --workers gpu:1 --worker-bin "$bin/worker" 2>&1
      sweep "$g" --slots 1
    done
    ;;
  *) echo "unknown part $part (mlp, cnn, auto, program, lab1, fidelity, plan)" ;;
  esac ) || echo "== $part failed (exit $?)"
done
