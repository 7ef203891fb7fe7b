#!/usr/bin/env bash
# A real OpenAI-compatible model server for the endpoint tests: llama-cpp-python's server
# with the SmolLM2-135M GGUF, on loopback.
#   scripts/llama-server.sh install        build (once, cached) and install llama-cpp-python
#   scripts/llama-server.sh start PORT     start it in the background; waits until it answers
#   scripts/llama-server.sh stop           stop the one started here
# The wheel is built from source once (about 4 minutes on 2 cores) and kept under
# ~/.cache/benchctl/wheels, so later runs on the same machine install it in seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${BENCHCTL_CACHE:-$HOME/.cache/benchctl}"
venv="${BENCHCTL_LLAMA_VENV:-$cache/llama-venv}"
wheels="$cache/wheels"
version="0.3.36"
state="${BENCHCTL_LLAMA_STATE:-${TMPDIR:-/tmp}/benchctl-llama-server}"

install() {
    mkdir -p "$wheels"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    if "$venv/bin/python" -c "import llama_cpp.server, llama_cpp; assert llama_cpp.__version__ == '$version'" 2>/dev/null; then
        return
    fi
    if ! ls "$wheels"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
        echo "building llama-cpp-python $version from source (about 4 minutes; cached afterwards)" >&2
        "$venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps -w "$wheels" "llama-cpp-python==$version"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check --find-links "$wheels" "llama-cpp-python[server]==$version"
}

start() {
    local port="$1"
    local models="${BENCHCTL_MODELS:-$cache/models}"
    local model="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
    [ -s "$model" ] || { echo "error: $model is missing; run scripts/fetch-models.sh" >&2; exit 1; }
    mkdir -p "$state"
    "$venv/bin/python" "$here/llama-server.py" --model "$model" --model_alias smollm2 \
        --host 127.0.0.1 --port "$port" --n_threads "${BENCHCTL_LLAMA_THREADS:-1}" --n_ctx 2048 \
        --interrupt_requests False >"$state/server.log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 1 120); do
        if python3 - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/models", timeout=2).read()
PY
            echo "llama-cpp-python server on http://127.0.0.1:$port/v1 (pid $(cat "$state/pid"), log $state/server.log)"
            return
        fi
        if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
            echo "error: the server exited; its log:" >&2
            cat "$state/server.log" >&2
            exit 1
        fi
        sleep 1
    done
    echo "error: the server did not answer within 120 s; its log:" >&2
    cat "$state/server.log" >&2
    exit 1
}

stop() {
    if [ -f "$state/pid" ]; then
        kill "$(cat "$state/pid")" 2>/dev/null || true
        rm -f "$state/pid"
    fi
}

case "${1:-}" in
    install) install ;;
    start) start "${2:?usage: $0 start PORT}" ;;
    stop) stop ;;
    *) echo "usage: $0 install | start PORT | stop" >&2; exit 2 ;;
esac
