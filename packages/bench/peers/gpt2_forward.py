#!/usr/bin/env python3
"""PyTorch (CPU) peer of the models bench suite (packages/bench/src/suites/models.ts).

A plain GPT-2 in torch (no transformers), on the checkpoint directory that sorsajs's savePretrained
wrote: config.json and model.safetensors (or shards with model.safetensors.index.json), read here
by a small safetensors reader (torch 1.13 has none). The linear weights are GPT-2's Conv1D layout,
[in, out], used as x W + b (transformers' Conv1D: torch.addmm(b, x, W)); the lm head is tied to wte.

DIR/manifest.json gives the checkpoint directory, the token ids of the forward pass ([1, T]), the
number of greedy decode steps, the timing and the thread count. Writes DIR/logits.bin (the forward
pass's logits, float32 [1, T, vocab]) for the suite to compare, and prints one JSON object:

    {"torch", "blas", "threads", "tokens": [greedy ids after the prompt],
     "forward": {"medianMs", "samples"}, "decode": {"medianMs", "samples"}}

decode is one call of `steps` one-position forward passes over the prompt's key/value cache (made
once, outside the timing), each feeding the previous greedy token and reading its argmax into
Python; "tokens" is the prompt's greedy token followed by those `steps` tokens.

Usage: python3 gpt2_forward.py DIR
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ beside the checked-in scripts
from torch_peer import blas, sample  # noqa: E402  (beside this file)


def read_safetensors(path):
    """The F32 tensors of a safetensors file: an 8-byte little-endian header length, a JSON header
    (name -> dtype, shape, data_offsets within the data that follows), then the data."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
        data = bytearray(fh.read())
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {e['dtype']}, this reader takes F32 only")
        a, b = e["data_offsets"]
        out[name] = torch.frombuffer(data, dtype=torch.float32, offset=a, count=(b - a) // 4).reshape(e["shape"])
    return out


def read_checkpoint(d):
    single = os.path.join(d, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(d, "model.safetensors.index.json")) as fh:
        shards = sorted(set(json.load(fh)["weight_map"].values()))
    w = {}
    for s in shards:
        w.update(read_safetensors(os.path.join(d, s)))
    return w


def main() -> None:
    d = sys.argv[1]
    with open(os.path.join(d, "manifest.json")) as fh:
        man = json.load(fh)
    torch.set_num_threads(man["threads"])
    ckpt = man["checkpoint"]
    with open(os.path.join(ckpt, "config.json")) as fh:
        cfg = json.load(fh)
    W = read_checkpoint(ckpt)
    W = {(k if k.startswith("transformer.") or k == "lm_head.weight" else f"transformer.{k}"): v for k, v in W.items()}
    D, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    hd = D // H
    wte, wpe = W["transformer.wte.weight"], W["transformer.wpe.weight"]
    head = W.get("lm_head.weight", wte)

    def conv1d(x, name):
        # transformers' Conv1D: weight [in, out], y = x W + b.
        return torch.addmm(W[f"{name}.bias"], x.reshape(-1, x.shape[-1]), W[f"{name}.weight"]).reshape(*x.shape[:-1], -1)

    def forward(ids, past):
        """Logits [B, T, vocab] of ids [B, T] after the cached positions, and the extended cache."""
        B, T = ids.shape
        p0 = 0 if past is None else past[0][0].shape[2]
        x = wte[ids] + wpe[p0:p0 + T]
        mask = None if T == 1 else torch.ones(T, p0 + T, dtype=torch.bool).tril(diagonal=p0)
        cache = []
        for i in range(L):
            p = f"transformer.h.{i}"
            h = F.layer_norm(x, (D,), W[f"{p}.ln_1.weight"], W[f"{p}.ln_1.bias"], eps)
            q, k, v = (t.reshape(B, T, H, hd).transpose(1, 2) for t in conv1d(h, f"{p}.attn.c_attn").split(D, dim=-1))
            if past is not None:
                k = torch.cat([past[i][0], k], dim=2)
                v = torch.cat([past[i][1], v], dim=2)
            cache.append((k, v))
            s = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
            if mask is not None:
                s = s.masked_fill(~mask, torch.finfo(torch.float32).min)
            a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, D)
            x = x + conv1d(a, f"{p}.attn.c_proj")
            h = F.layer_norm(x, (D,), W[f"{p}.ln_2.weight"], W[f"{p}.ln_2.bias"], eps)
            x = x + conv1d(F.gelu(conv1d(h, f"{p}.mlp.c_fc"), approximate="tanh"), f"{p}.mlp.c_proj")
        x = F.layer_norm(x, (D,), W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
        return x @ head.T, cache

    ids = torch.tensor(man["ids"], dtype=torch.int64).reshape(1, -1)
    steps = man["steps"]
    with torch.no_grad():
        logits, cache0 = forward(ids, None)
        with open(os.path.join(d, "logits.bin"), "wb") as fh:
            fh.write(logits.contiguous().numpy().tobytes())
        first = int(logits[0, -1].argmax())

        def decode():
            tok, cache, out = first, cache0, []
            for _ in range(steps):
                lg, cache = forward(torch.tensor([[tok]]), cache)
                tok = int(lg[0, -1].argmax())
                out.append(tok)
            return out

        tokens = [first] + decode()

        t = man["timing"]

        forward_t = sample(lambda: forward(ids, None), t)
        decode_t = sample(decode, t)
    print(json.dumps({
        "torch": torch.__version__,
        "blas": blas(),
        "threads": torch.get_num_threads(),
        "tokens": tokens,
        "forward": forward_t,
        "decode": decode_t,
    }))


if __name__ == "__main__":
    main()
