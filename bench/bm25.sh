#!/usr/bin/env bash
# BM25 speed and agreement: polydense (tantivy + ICU analysis) vs bm25s and rank_bm25 on the
# same corpus and queries. Every system gets the same tokens (polydense's analysis, written
# to a file), so the top-10 overlap measures scoring, not tokenisation. Prints docs/s for
# indexing, queries/s for top-K search, their ratios, and pairwise top-10 overlap.
#
# Usage: bench/bm25.sh BEIR_DIR [K]      (e.g. the XQuAD-R lareqa pool: DIR/all)
# Python: PYTHON=/path/to/python with bm25s, rank_bm25, numpy and scipy (default: python3).
# Threads: RAYON_NUM_THREADS for polydense (bm25s and rank_bm25 run on one thread).
set -euo pipefail
DIR=${1:?usage: bench/bm25.sh BEIR_DIR [K]}; K=${2:-100}
PYTHON=${PYTHON:-python3}
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$root"
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release -q -p polydense-lexical --example bench_bm25
  BENCH_BIN="${CARGO_TARGET_DIR:-$root/target}/release/examples/bench_bm25"
fi
line="$("$BENCH_BIN" "$DIR/corpus.jsonl" "$DIR/queries.jsonl" "$work" "$K")"
echo "$line"
"$PYTHON" bench/bm25_peers.py "$work" "$K" "$line"
