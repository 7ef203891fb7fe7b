#!/usr/bin/env bash
# The whole test suite as CI runs it (the real llama-server, every BENCHCTL_REQUIRE_*), with a
# busy loop on one core, listing every failure (--no-fail-fast): a test that fails only here
# depends on the machine being quiet (docs/architecture.md, "Tests hold on a busy machine").
# Needs what .ci/run installs (models, the NVRTC venv, llama-server, tests/browser).
#
#   scripts/busy-suite.sh                (about 16 minutes on 2 cores)
set -uo pipefail
cd "$(dirname "$0")/.."
export BENCHCTL_MODELS="${BENCHCTL_MODELS:-$HOME/.cache/benchctl/models}" BENCHCTL_REQUIRE_MODELS=1 BENCHCTL_REQUIRE_NUMPY=1
nv="${BENCHCTL_NVRTC_VENV:-$HOME/.cache/benchctl/nvrtc-venv}"
BENCHCTL_NVRTC_LIB="$("$nv/bin/python" -c 'import nvidia, os; print([os.path.join(p, "cu13", "lib") for p in nvidia.__path__ if os.path.isdir(os.path.join(p, "cu13"))][0])')"
export BENCHCTL_NVRTC_LIB BENCHCTL_REQUIRE_NVRTC=1 BENCHCTL_REQUIRE_BROWSER=1 BENCHCTL_REQUIRE_PLAYWRIGHT=1
BENCHCTL_LLAMA_STATE="$(mktemp -d)"
export BENCHCTL_LLAMA_STATE
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
scripts/llama-server.sh start "$port" || exit 1
export BENCHCTL_LLAMA_URL="http://127.0.0.1:$port/v1" BENCHCTL_REQUIRE_LLAMA=1
sh -c 'while :; do :; done' &
busy=$!
trap 'kill "$busy" 2>/dev/null; scripts/llama-server.sh stop; rm -rf "$BENCHCTL_LLAMA_STATE"' EXIT
start=$(date +%s)
cargo test --no-fail-fast
rc=$?
echo "the suite beside a busy loop: exit $rc after $(( $(date +%s) - start )) s"
exit $rc
