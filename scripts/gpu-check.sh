#!/usr/bin/env bash
# Runs the GPU scenarios on a GPU machine with a benchctl built by scripts/build-cuda.sh
# (or the default build, for the kernel scenarios, which need only the driver and NVRTC)
# and prints their summaries: TTFT, ITL and tok/s per batch size; kernel GB/s against the
# bare launch loop and the device peak; the correctness checks. Usage:
#   scripts/gpu-check.sh [BENCHCTL_BINARY]      (default target/cuda/release/benchctl)
# Results go to $OUT (default out/gpu-check). Exit 0 when every scenario ended as expected
# (gpu-kernel-bug must fail its check: exit 1).
set -uo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/cuda/release/benchctl}"
out="${OUT:-out/gpu-check}"
export LD_LIBRARY_PATH="/usr/local/cuda/targets/x86_64-linux/lib:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
status=0
for s in scenarios/gpu-*.kdl; do
    name="$(basename "$s" .kdl)"
    want=0
    [ "$name" = gpu-kernel-bug ] && want=1
    echo "== $name (expected exit $want)"
    "$bin" run "$s" --out "$out/$name"
    got=$?
    if [ "$got" != "$want" ]; then
        echo "!! $name exited $got, expected $want"
        status=1
    fi
done
exit "$status"
