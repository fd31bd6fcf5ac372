#!/usr/bin/env bash
# Exact inner-product top-k: polydense-index vs FAISS IndexFlatIP on the same seeded random
# unit vectors. Prints queries/s of each, the speed ratio, and the overlap of their top-k.
#
# Usage: bench/search_exact.sh [N_CORPUS] [N_QUERIES] [DIM] [K]
# Needs a Python with faiss-cpu and numpy: PYTHON=/path/to/python (default: python3).
# BENCH_BIN=/path/to/bench_exact skips the cargo build (for a machine without Rust).
# Threads: RAYON_NUM_THREADS and OMP_NUM_THREADS (set both to the same value to compare).
set -euo pipefail
N=${1:-100000}; M=${2:-1000}; DIM=${3:-384}; K=${4:-100}
PYTHON=${PYTHON:-python3}
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$root"
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release -q -p polydense-index --example bench_exact
  BENCH_BIN="${CARGO_TARGET_DIR:-$root/target}/release/examples/bench_exact"
fi
"$BENCH_BIN" "$N" "$M" "$DIM" "$K" "$work" | tee "$work/rust.txt"
"$PYTHON" - "$N" "$M" "$DIM" "$K" "$work" <<'PY'
import re, sys, time
import numpy as np, faiss
n, m, dim, k = map(int, sys.argv[1:5]); work = sys.argv[5]
corpus = np.fromfile(f"{work}/corpus.f32", dtype="<f4").reshape(n, dim)
queries = np.fromfile(f"{work}/queries.f32", dtype="<f4").reshape(m, dim)
index = faiss.IndexFlatIP(dim)
index.add(corpus)
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    _, ids = index.search(queries, k)
    best = min(best, time.perf_counter() - t)
qps = m / best
print(f"faiss IndexFlatIP: {faiss.omp_get_max_threads()} threads: {best:.3f}s, {qps:.1f} queries/s")
ours = np.fromfile(f"{work}/hits.i32", dtype="<i4").reshape(m, -1)
overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(ours, ids)])
rust_qps = float(re.search(r"polydense exact:.* ([\d.]+) queries/s", open(f"{work}/rust.txt").read()).group(1))
print(f"top-{k} overlap with faiss: {overlap:.4f}")
print(f"ratio polydense/faiss: {rust_qps / qps:.2f}x")
PY
