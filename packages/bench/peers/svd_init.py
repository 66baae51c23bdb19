#!/usr/bin/env python3
"""PyTorch (CPU) peer of the svd-init bench suite (packages/bench/src/suites/svd-init.ts).

For each float32 matrix the suite exported into DIR (manifest.json and matrices.bin, written by
src/peers/svd-torch.ts): times torch.linalg.svd(A, full_matrices=False) (LAPACK's full thin SVD, the
issue's yardstick) and torch.svd_lowrank(A, q=rank, niter=2), as tinybench does (warm-up, then at
least timeMs and iterations samples); computes the float64 SVD of the same float32 values as the
reference (top-rank singular values and left singular vectors); and the accuracy of both float32
results against it. Prints one JSON object on stdout:

    {"torch": ..., "blas": ..., "threads": 2,
     "cases": [{"name", "reference": {"S": [...], "U": [...]},
                "svd": {"medianMs", "samples", "sigmaErr", "angle"},
                "lowrank": {...}}]}

sigmaErr is the largest relative error of the top-rank singular values; angle the sine of the
largest principal angle between the top-rank left singular subspaces.

Usage: python3 svd_init.py DIR
"""
import json
import os
import sys

import torch

sys.dont_write_bytecode = True  # no __pycache__ beside the checked-in scripts
from torch_peer import blas, sample  # noqa: E402  (beside this file)


def accuracy(S, U, ref_S, ref_U, k):
    s = S[:k].double()
    sigma = float(((s - ref_S) / ref_S).abs().max())
    # The sine from the part of ref's subspace outside span(U), ||(I - Q Q^T) ref_U||_2 with Q an
    # orthonormal basis of span(U) in float64. As sqrt(1 - cos^2) from the singular values of
    # ref_U^T U it had a floor of ~1e-3: float32 U's column norms (1 +- ~1e-6) alone put it there.
    Q, _ = torch.linalg.qr(U[:, :k].double())
    res = ref_U - Q @ (Q.T @ ref_U)
    res = res - Q @ (Q.T @ res)
    return sigma, float(torch.linalg.matrix_norm(res, ord=2))


def main() -> None:
    d = sys.argv[1]
    with open(os.path.join(d, "manifest.json")) as fh:
        man = json.load(fh)
    with open(os.path.join(d, "matrices.bin"), "rb") as fh:
        raw = fh.read()
    torch.set_num_threads(man["threads"])
    k = man["rank"]
    out = []
    for case in man["cases"]:
        a = torch.frombuffer(bytearray(raw[case["offset"]:case["offset"] + case["bytes"]]), dtype=torch.float32)
        a = a.reshape(case["m"], case["n"])
        U64, S64, _ = torch.linalg.svd(a.double(), full_matrices=False)
        ref_S, ref_U = S64[:k], U64[:, :k]
        torch.manual_seed(0)
        res = {"name": case["name"], "reference": {"S": ref_S.tolist(), "U": ref_U.flatten().tolist()}}
        for key, fn in [("svd", lambda: torch.linalg.svd(a, full_matrices=False)), ("lowrank", lambda: torch.svd_lowrank(a, q=k, niter=2))]:
            t = sample(fn, man["timing"])
            U, S, _ = fn()
            t["sigmaErr"], t["angle"] = accuracy(S, U, ref_S, ref_U, k)
            res[key] = t
        out.append(res)
    print(json.dumps({"torch": torch.__version__, "blas": blas(), "threads": torch.get_num_threads(), "cases": out}))


if __name__ == "__main__":
    main()
