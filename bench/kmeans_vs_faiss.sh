#!/usr/bin/env bash
# k-means: polydense-index vs faiss.Kmeans on the same vectors, same k, 20 iterations, same
# threads, in one run. Each tool runs seeds SEED..SEED+REPEATS; prints the best time of each,
# the ratio faiss/polydense, each tool's own inertia, and both tools' centroids scored by the
# same exact code (mean, min and max over the seeds).
#
# Cases: (a) the e5-small corpus embeddings of runs/baseline (skipped when absent), k=64;
#        (b) a seeded synthetic 100k×384 Gaussian mixture, k=256.
# Usage: bench/kmeans_vs_faiss.sh
# Env: PYTHON (a Python with faiss-cpu and numpy), THREADS (default 2; sets RAYON_NUM_THREADS
#      and OMP_NUM_THREADS), REPEATS (default 3), ITERS (default 20), STORE (case a's store),
#      SYN_N / SYN_DIM / SYN_K (case b), KMEANS_BIN (skips the cargo build).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$HOME/.cache/polydense/venv-index/bin/python}
THREADS=${THREADS:-2}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-$THREADS}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$THREADS}
REPEATS=${REPEATS:-3}; ITERS=${ITERS:-20}; SEED=${SEED:-1234}
STORE=${STORE:-$root/runs/baseline/paragraph-all/corpus-embeddings}
SYN_N=${SYN_N:-100000}; SYN_DIM=${SYN_DIM:-384}; SYN_K=${SYN_K:-256}
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$root"
if [ -z "${KMEANS_BIN:-}" ]; then
  cargo build --release -q -p polydense-index --example kmeans
  KMEANS_BIN="${CARGO_TARGET_DIR:-$root/target}/release/examples/kmeans"
fi
echo "machine: $(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "threads: RAYON_NUM_THREADS=$RAYON_NUM_THREADS OMP_NUM_THREADS=$OMP_NUM_THREADS; iterations $ITERS; best of $REPEATS"

# One case: polydense on INPUT, then faiss on the same rows, then the comparison.
run_case() { # NAME INPUT DIM K
  local name=$1 input=$2 dim=$3 k=$4 dir="$work/$1"
  mkdir -p "$dir"
  echo "== $name: k=$k"
  "$KMEANS_BIN" "$input" "$dim" "$k" "$ITERS" "$SEED" "$REPEATS" "$dir" | tee "$dir/rust.txt"
  local data="$input"; [ -d "$input" ] && data="$dir/data.f32"
  "$PYTHON" "$root/bench/kmeans_vs_faiss.py" compare "$data" "$k" "$ITERS" "$SEED" "$REPEATS" "$dir"
}

if [ -f "$STORE/embeddings.safetensors" ]; then
  run_case e5-small-corpus "$STORE" 0 64
else
  echo "== e5-small-corpus: skipped, no store at $STORE"
fi
"$PYTHON" "$root/bench/kmeans_vs_faiss.py" mixture "$SYN_N" "$SYN_DIM" "$SYN_K" "$SEED" "$work/mixture.f32"
run_case "synthetic-${SYN_N}x${SYN_DIM}" "$work/mixture.f32" "$SYN_DIM" "$SYN_K"
