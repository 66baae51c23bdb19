"""Helpers shared by the PyTorch peers of the bench suites (gpt_step.py, gpt2_forward.py,
svd_init.py): which BLAS torch loaded, and tinybench's way of sampling a call."""
import os
import statistics
import time


def blas() -> str:
    """Which BLAS the process loaded (Debian's torch links libblas.so.3, an alternative that is the
    slow reference BLAS unless an OpenBLAS package provides it)."""
    try:
        with open("/proc/self/maps") as fh:
            libs = {line.split()[-1] for line in fh if "blas" in line}
    except OSError:
        return "unknown"
    names = {os.path.realpath(x) for x in libs}
    if any("openblas" in x for x in names):
        return "OpenBLAS"
    if any("mkl" in x for x in names):
        return "MKL"
    return "reference BLAS" if names else "unknown"


def sample(fn, timing):
    """tinybench's way: warm-up calls until both warmupTime (ms) and warmupIterations are reached,
    then timed calls until both time (ms) and iterations are; returns the median and the count."""
    start = time.perf_counter()
    n = 0
    while (time.perf_counter() - start) * 1e3 < timing["warmupTime"] or n < timing["warmupIterations"]:
        fn()
        n += 1
    times = []
    start = time.perf_counter()
    while (time.perf_counter() - start) * 1e3 < timing["time"] or len(times) < timing["iterations"]:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"medianMs": statistics.median(times), "samples": len(times)}
