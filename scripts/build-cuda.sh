#!/usr/bin/env bash
# Builds benchctl with candle's CUDA backend on a machine with no CUDA install: the CUDA
# 13.0 compiler and libraries come from PyPI wheels into a virtualenv, and libcuda (which
# only the NVIDIA driver provides) is replaced at link time by a stub of its function names;
# the real driver's libcuda.so.1 is loaded when the binary runs on a GPU machine.
#
#   scripts/build-cuda.sh            # binary: target/cuda/release/benchctl
#   CUDA_COMPUTE_CAP=89 scripts/build-cuda.sh   # RTX 4090 (default 90: H100/H200)
#
# Versions are pinned to CUDA 13.0 to match the GPU machine's driver (PTX from a newer nvcc
# does not load on an older driver). The default build (`cargo build`) stays GPU-free.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${BENCHCTL_CUDA_VENV:-$root/target/cuda-toolchain}"
cap="${CUDA_COMPUTE_CAP:-90}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
    nvidia-cublas==13.1.0.3 nvidia-curand==10.4.0.35
cu13="$("$venv/bin/python" - <<'PY'
import os, nvidia
for p in nvidia.__path__:
    if os.path.isdir(os.path.join(p, "cu13")):
        print(os.path.join(p, "cu13"))
        break
PY
)"
[ -x "$cu13/bin/nvcc" ] || { echo "error: nvcc not found under $cu13/bin" >&2; exit 1; }

# The wheels carry versioned names only; the linker wants the plain ones.
link="$venv/link"
mkdir -p "$link"
for lib in cublas cublasLt curand nvrtc cudart; do
    f="$(ls "$cu13/lib/lib$lib.so."* 2>/dev/null | sort | head -1)"
    [ -n "$f" ] || { echo "error: lib$lib.so.* not found in $cu13/lib" >&2; exit 1; }
    ln -sf "$f" "$link/lib$lib.so"
done

# A link stub for libcuda: every driver entry point cudarc declares, as an empty function.
cd "$root"
cargo fetch --quiet
sys="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*/cudarc-0.19.*/src/driver/sys/mod.rs' | sort | tail -1)"
[ -n "$sys" ] || { echo "error: cudarc's driver bindings not found in the cargo registry" >&2; exit 1; }
grep -o 'pub unsafe fn cu[A-Za-z0-9_]*' "$sys" | sort -u | sed 's/^pub unsafe fn \(.*\)$/void \1(void) {}/' > "$link/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/libcuda_stub.c"

PATH="$cu13/bin:$PATH" CUDA_ROOT="$cu13" CUDA_PATH="$cu13" CUDA_HOME="$cu13" \
    CUDA_COMPUTE_CAP="$cap" RUSTFLAGS="-L native=$link" LIBRARY_PATH="$link" \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true \
    cargo build --release --features cuda --target-dir "$root/target/cuda"
echo "built: $root/target/cuda/release/benchctl (compute capability $cap)"
