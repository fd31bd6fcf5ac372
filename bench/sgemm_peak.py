#!/usr/bin/env python3
"""Single-precision matmul peak of this machine on THREADS threads (default 2): the ceiling
that the encode benchmark's GFLOP/s are reported against. numpy's BLAS on N×N f32 (default
2048), best of REPS. Prints one JSON line."""
import json
import os
import time

threads = os.environ.get("THREADS", "2")
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[var] = threads  # read by the BLAS when numpy loads it
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

n = int(os.environ.get("N", "2048"))
reps = int(os.environ.get("SGEMM_REPS", "7"))
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
c = np.empty((n, n), dtype=np.float32)
with threadpool_limits(limits=int(threads)):
    np.matmul(a, b, out=c)  # warm-up: page in, spin up the BLAS threads
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t)
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
print(json.dumps({"n": n, "seconds": round(best, 4), "gflops": round(2 * n**3 / best / 1e9, 1),
                  "threads": int(threads), "blas": blas}))
