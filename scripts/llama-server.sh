#!/usr/bin/env bash
# A real OpenAI-compatible model server for the endpoint tests and for trying benchctl without
# a GPU: llama.cpp's own `llama-server` (continuous batching, parallel slots, Prometheus
# metrics) with the SmolLM2-135M GGUF, on loopback.
#   scripts/llama-server.sh install        build llama-server once (cached) and print its path
#   scripts/llama-server.sh start PORT     start it in the background; waits until it answers
#   scripts/llama-server.sh stop           stop the one started here
# The source is the llama.cpp tree vendored in the llama-cpp-python sdist on PyPI (no git or
# model hub needed); cmake and ninja come from PyPI too. The build takes about 10 minutes on
# 2 cores and is kept under ~/.cache/benchctl/llama-server/VERSION-CPUFLAGS, since it is
# built for this machine's CPU.
# Settings: BENCHCTL_LLAMA_SLOTS (parallel slots, 4), BENCHCTL_LLAMA_THREADS (1: with more
# threads than free cores, throughput collapses on a busy 2-core machine), BENCHCTL_LLAMA_CTX
# (context shared by the slots, 8192), BENCHCTL_LLAMA_STATE (pid and log folder).
set -euo pipefail
cache="${BENCHCTL_CACHE:-$HOME/.cache/benchctl}"
version="0.3.36"
state="${BENCHCTL_LLAMA_STATE:-${TMPDIR:-/tmp}/benchctl-llama-server}"
cpu_key="$( (grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m) | sha256sum | cut -c1-12)"
home="$cache/llama-server/$version-$cpu_key"
binary="$home/llama-server"

install() {
    if [ -x "$binary" ]; then
        echo "$binary"
        return
    fi
    local tools="$cache/build-tools"
    if [ ! -x "$tools/bin/cmake" ] || [ ! -x "$tools/bin/ninja" ]; then
        python3 -m venv "$tools"
        "$tools/bin/pip" install --quiet --disable-pip-version-check cmake ninja
    fi
    local work
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' RETURN
    echo "building llama-server from llama-cpp-python $version's llama.cpp (about 10 minutes; cached afterwards)" >&2
    # Only this package as source: `--no-binary :all:` would compile cmake too.
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary llama-cpp-python \
        -d "$work" "llama-cpp-python==$version"
    tar -xzf "$work"/llama_cpp_python-"$version".tar.gz -C "$work"
    local src="$work/llama_cpp_python-$version/vendor/llama.cpp"
    # The default UI option downloads files (no network here); OpenSSL is not needed on loopback.
    PATH="$tools/bin:$PATH" cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$work/configure.log" 2>&1 \
        || { cat "$work/configure.log" >&2; exit 1; }
    PATH="$tools/bin:$PATH" cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
        || { tail -50 "$work/build.log" >&2; exit 1; }
    mkdir -p "$home"
    cp "$work/build/bin/llama-server" "$binary.tmp"
    mv "$binary.tmp" "$binary"
    echo "$binary"
}

start() {
    local port="$1"
    local models="${BENCHCTL_MODELS:-$cache/models}"
    local model="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
    [ -s "$model" ] || { echo "error: $model is missing; run scripts/fetch-models.sh" >&2; exit 1; }
    [ -x "$binary" ] || { echo "error: llama-server is not built; run $0 install" >&2; exit 1; }
    mkdir -p "$state"
    # --no-repack: on processors with AMX the repacked weights crash on the first prompt of
    # more than one token (ggml-org/llama.cpp#20824).
    "$binary" --model "$model" --alias smollm2 --host 127.0.0.1 --port "$port" \
        --parallel "${BENCHCTL_LLAMA_SLOTS:-4}" --threads "${BENCHCTL_LLAMA_THREADS:-1}" \
        --threads-batch "${BENCHCTL_LLAMA_THREADS:-1}" --ctx-size "${BENCHCTL_LLAMA_CTX:-8192}" \
        --metrics --no-webui --no-repack >"$state/server.log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 1 120); do
        if python3 - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/models", timeout=2).read()
PY
            echo "llama-server on http://127.0.0.1:$port/v1 (pid $(cat "$state/pid"), log $state/server.log)"
            return
        fi
        if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
            echo "error: the server exited; its log:" >&2
            cat "$state/server.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "error: the server did not answer within 60 s; its log:" >&2
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
