"""FAISS side of bench/kmeans_vs_faiss.sh.

mixture N DIM COMPONENTS SEED OUT   writes a seeded Gaussian mixture as raw little-endian f32
compare DATA K ITERS SEED REPEATS DIR  times faiss.Kmeans on DATA with seeds SEED..SEED+REPEATS
                                    (DIR/rust.txt gives the shape and the polydense figures)
                                    and scores both tools' centroids of each seed with the
                                    same exact nearest-centroid search
"""

import re
import sys
import time

import faiss
import numpy as np


def mixture(n, dim, components, seed, out):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((components, dim), dtype=np.float32)
    labels = rng.integers(0, components, size=n)
    x = centres[labels] + rng.standard_normal((n, dim), dtype=np.float32)
    x.astype("<f4").tofile(out)


def inertia(x, centroids):
    """Sum of squared L2 distances to the nearest centroid, exact (flat index), in f64."""
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    d, _ = index.search(x, 1)
    return float(d.astype(np.float64).sum())


def compare(data, k, iters, seed, repeats, work):
    rust = open(f"{work}/rust.txt").read()
    m = re.search(
        r"n=(\d+) dim=(\d+) k=\d+ iterations=(\d+) threads=(\d+): ([\d.]+)s, inertia ([\d.e+-]+)",
        rust,
    )
    n, dim, rust_iters, rust_threads = (int(m.group(i)) for i in range(1, 5))
    rust_s, rust_inertia = float(m.group(5)), float(m.group(6))
    x = np.fromfile(data, dtype="<f4").reshape(n, dim)
    seeds = range(seed, seed + repeats)
    best, objective, fi = float("inf"), [], []
    for s in seeds:
        # max_points_per_centroid raised so FAISS clusters every row instead of a sample.
        km = faiss.Kmeans(dim, k, niter=iters, seed=s, max_points_per_centroid=n + 1)
        t = time.perf_counter()
        km.train(x)
        best = min(best, time.perf_counter() - t)
        objective.append(km.obj[-1])
        fi.append(inertia(x, km.centroids))
    ri = [inertia(x, np.fromfile(f"{work}/centroids-{s}.f32", dtype="<f4").reshape(k, dim))
          for s in seeds]
    print(
        f"faiss.Kmeans: n={n} dim={dim} k={k} niter={iters} threads={faiss.omp_get_max_threads()}"
        f" (polydense: {rust_threads}), no subsampling: {best:.3f}s,"
        f" own objective (last iteration, mean) {np.mean(objective):.6e}"
    )
    print(f"polydense own inertia (mean) {rust_inertia:.6e} after {rust_iters} iterations")
    span = lambda v: f"{np.mean(v):.6e} [{min(v):.6e}..{max(v):.6e}]"  # noqa: E731
    print(f"inertia of final centroids, same exact scorer, mean [min..max] over seeds"
          f" {seeds.start}..{seeds.stop - 1}: polydense {span(ri)}, faiss {span(fi)}"
          f" (polydense/faiss {np.mean(ri) / np.mean(fi):.4f})")
    print(f"time (best of {repeats}): polydense {rust_s:.3f}s, faiss {best:.3f}s;"
          f" ratio faiss/polydense {best / rust_s:.2f}x")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "mixture":
        mixture(int(args[0]), int(args[1]), int(args[2]), int(args[3]), args[4])
    elif cmd == "compare":
        compare(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]), args[5])
    else:
        sys.exit(__doc__)
