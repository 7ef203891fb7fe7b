"""An independent GPT-2 forward pass in numpy (float64), the reference for benchctl's GPT-2.

usage: gpt2_numpy.py WEIGHTS.safetensors N_HEAD TOKENS(comma-separated) OUT.f64

Reads a safetensors file with Hugging Face GPT-2 names (Conv1D weights as (in, out)),
runs the whole token sequence at once (no KV cache) and writes the logits of every position
as little-endian float64, positions x vocab.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info["dtype"]
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + a : base + b], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def main():
    path, n_head, tokens, out = sys.argv[1], int(sys.argv[2]), [int(t) for t in sys.argv[3].split(",")], sys.argv[4]
    w = read_safetensors(path)
    n_layer = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("h."))
    t = len(tokens)
    x = w["wte.weight"][tokens] + w["wpe.weight"][:t]
    d = x.shape[1]
    hd = d // n_head
    future = np.triu(np.ones((t, t), dtype=bool), 1)
    for i in range(n_layer):
        p = f"h.{i}."
        a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = (qkv[:, j * d : (j + 1) * d].reshape(t, n_head, hd).transpose(1, 0, 2) for j in range(3))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        s[:, future] = -np.inf
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        y = (s @ v).transpose(1, 0, 2).reshape(t, d)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        m = gelu_tanh(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"])
    logits = x @ w["wte.weight"].T
    logits.astype("<f8").tofile(out)


if __name__ == "__main__":
    main()
