#!/usr/bin/env bash
# Peak RSS of a worker running K slots (K = 1, 2, 4) on lab 1 part 2's model, 1 epoch per trial,
# against a local coordinator. Prints one JSON line per K.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for k in 1 2 4; do
  cat >"$tmp/grid.toml" <<TOML
[sweep]
name = "rss"
[[experiment]]
name = "fm"
dataset = "fashion-mnist"
checkpoint_every = 0
[experiment.fixed]
epochs = 1
[experiment.grid]
seed = [$(seq -s, 1 "$k")]
TOML
  target/release/coordinator --grid "$tmp/grid.toml" --listen 127.0.0.1:0 --out "$tmp/out-$k" --linger 2s \
    >"$tmp/coord.out" 2>"$tmp/coord.log" &
  coord=$!
  addr=""
  for _ in $(seq 1 200); do
    addr=$(sed -n 's/^listening on //p' "$tmp/coord.out" | head -n1); [ -n "$addr" ] && break; sleep 0.05
  done
  /usr/bin/time -f '%M' -o "$tmp/rss" target/release/worker --cpu --slots "$k" \
    --coordinator "http://$addr" --data-dir "${SWEEP_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}" 2>"$tmp/worker.log"
  wait "$coord" || true
  echo "{\"impl\": \"worker-rss\", \"slots\": $k, \"peak_rss_mib\": $(( $(cat "$tmp/rss") / 1024 ))}"
done
