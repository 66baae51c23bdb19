#!/usr/bin/env python3
"""PyTorch peer (CPU, or CUDA where the manifest asks) of the gpt bench suite (packages/bench/src/suites/gpt.ts).

Times the SORSA fine-tuning step of sorsajs's makeTrainStep and the forward pass of the same small
GPT-2, from the initial weights and batch the suite exported into DIR (manifest.json and
tensors.bin, written by src/peers/gpt-torch.ts), and prints one JSON object on stdout:

    {"torch": ..., "threads": 2, "device": ..., "probe": {"loss0", "gradNorm0", "loss1"},
     "step": {"medianMs", "samples"}, "forward": {"medianMs", "samples"}}

The step is the official SORSA trainer's order: the task loss's gradients with respect to the
adapters (U, S, Vt) only, clipped by clip_grad_norm_ (global norm, 1e-6 added to the norm), then
the gradient of (gamma / peakLr) * regularizer accumulated unclipped, then torch.optim.AdamW. The
regularizer is the mean over every U and Vt of the unsquared Frobenius norms of U^T U - I and
Vt Vt^T - I. With shapes.factored each adapted layer is computed as PEFT computes it,
x W_r^T + b + ((x Vt^T) * S) U^T; otherwise through the merged weight W_r + U diag(S) Vt. Timing mirrors tinybench: at least warmupMs and warmupIterations of warm-up, then at
least timeMs and iterations samples, each one call until the loss is a Python float. With
"device": "cuda" in the manifest everything runs on the GPU, and the forward pass synchronizes
before it returns (the step's .item() already waits for the GPU).

Usage: python3 gpt_step.py DIR
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ beside the checked-in scripts
from torch_peer import blas, sample  # noqa: E402  (beside this file)


def main() -> None:
    d = sys.argv[1]
    with open(os.path.join(d, "manifest.json")) as fh:
        man = json.load(fh)
    with open(os.path.join(d, "tensors.bin"), "rb") as fh:
        raw = fh.read()
    torch.set_num_threads(man["threads"])
    dev = torch.device(man.get("device", "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpt_step.py: the manifest asks for device cuda, but torch.cuda.is_available() is False")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def load(e):
        dtype = torch.int64 if e["dtype"] == "int32" else torch.float32
        src = torch.frombuffer(bytearray(raw[e["offset"]:e["offset"] + e["bytes"]]),
                               dtype=torch.int32 if e["dtype"] == "int32" else torch.float32)
        return src.to(dtype).reshape(e["shape"]).to(dev)

    s = man["shapes"]
    h = man["hyper"]
    B, T, D, H = s["batch"], s["seq"], s["width"], s["heads"]
    hd = D // H
    frozen = {k: load(e) for k, e in man["frozen"].items()}
    paths = list(man["adapters"].keys())
    adapters = {p: {k: load(e).requires_grad_(True) for k, e in a.items()} for p, a in man["adapters"].items()}
    ids = load(man["ids"]).reshape(B, T)
    labels = load(man["labels"]).reshape(B * T)
    causal = torch.ones(T, T, dtype=torch.bool, device=dev).tril()
    masked = torch.finfo(torch.float32).min  # sorsajs's attention puts -FLT_MAX where it masks

    def logits_of(linear):
        x = frozen["transformer.wte.weight"][ids] + frozen["transformer.wpe.weight"][:T]
        for layer in range(s["layers"]):
            p = f"transformer.h.{layer}"
            y = F.layer_norm(x, (D,), frozen[f"{p}.ln_1.weight"], frozen[f"{p}.ln_1.bias"], h["normEps"])
            qkv = linear(y, f"{p}.attn.c_attn.weight", frozen[f"{p}.attn.c_attn.bias"])
            q, k, v = (t.reshape(B, T, H, hd).transpose(1, 2) for t in qkv.split(D, dim=-1))
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
            a = torch.softmax(scores.masked_fill(~causal, masked), dim=-1) @ v
            x = x + linear(a.transpose(1, 2).reshape(B, T, D), f"{p}.attn.c_proj.weight", frozen[f"{p}.attn.c_proj.bias"])
            y = F.layer_norm(x, (D,), frozen[f"{p}.ln_2.weight"], frozen[f"{p}.ln_2.bias"], h["normEps"])
            y = F.gelu(linear(y, f"{p}.mlp.c_fc.weight", frozen[f"{p}.mlp.c_fc.bias"]), approximate="tanh")
            x = x + linear(y, f"{p}.mlp.c_proj.weight", frozen[f"{p}.mlp.c_proj.bias"])
        x = F.layer_norm(x, (D,), frozen["transformer.ln_f.weight"], frozen["transformer.ln_f.bias"], h["normEps"])
        return F.linear(x, frozen["transformer.wte.weight"])  # the tied lm head

    def merged(p):
        a = adapters[p]
        return frozen[p] + (a["U"] * a["S"]) @ a["Vt"]

    def merged_layer(y, p, bias):
        return F.linear(y, merged(p), bias)

    def factored_layer(y, p, bias):
        # PEFT's way (and sorsajs's factoredParams): the frozen layer plus the adapter's thin products.
        a = adapters[p]
        return F.linear(y, frozen[p], bias) + ((y @ a["Vt"].T) * a["S"]) @ a["U"].T

    adapted_layer = factored_layer if s.get("factored") else merged_layer

    def regularizer():
        total = 0
        for p in paths:
            U, Vt = adapters[p]["U"], adapters[p]["Vt"]
            eye = torch.eye(U.shape[1], device=dev)
            total = total + torch.linalg.norm(U.T @ U - eye) + torch.linalg.norm(Vt @ Vt.T - eye)
        return total / (2 * len(paths))

    params = [adapters[p][k] for p in paths for k in ("U", "S", "Vt")]
    opt = torch.optim.AdamW(params, lr=h["lr"], betas=(h["b1"], h["b2"]), eps=h["eps"], weight_decay=h["weightDecay"])
    reg_weight = h["gamma"] / h["peakLr"]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(logits_of(adapted_layer).reshape(B * T, -1), labels)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, h["maxGradNorm"])
        (reg_weight * regularizer()).backward()  # accumulates into .grad after clipping: not clipped
        opt.step()
        return loss.item(), norm.item()

    loss0, norm0 = step()
    loss1, _ = step()

    with torch.no_grad():
        fixed = {p: merged(p).detach().clone() for p in paths}

    def forward():
        with torch.no_grad():
            logits_of(lambda y, p, bias: F.linear(y, fixed[p], bias))
        sync()

    t = man["timing"]

    step_t = sample(step, t)
    forward_t = sample(forward, t)
    print(json.dumps({
        "torch": torch.__version__,
        "blas": blas(),
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU",
        "probe": {"loss0": loss0, "gradNorm0": norm0, "loss1": loss1},
        "step": step_t,
        "forward": forward_t,
    }))


if __name__ == "__main__":
    main()
