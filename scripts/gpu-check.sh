#!/usr/bin/env bash
# Runs the GPU scenarios on a GPU machine with a benchctl built by scripts/build-cuda.sh
# and prints their summaries (TTFT, ITL and tok/s per batch size). Usage:
#   scripts/gpu-check.sh [BENCHCTL_BINARY]      (default target/cuda/release/benchctl)
# Results go to $OUT (default out/gpu-check).
set -uo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/cuda/release/benchctl}"
out="${OUT:-out/gpu-check}"
export LD_LIBRARY_PATH="/usr/local/cuda/targets/x86_64-linux/lib:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
status=0
for s in scenarios/gpu-*.kdl; do
    name="$(basename "$s" .kdl)"
    echo "== $name"
    "$bin" run "$s" --out "$out/$name" || status=$?
done
exit "$status"
