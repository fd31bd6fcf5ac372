#!/usr/bin/env bash
# polydense eval vs pytrec_eval on a 10,000-query x 1,000-document run (10M lines).
#
# Both sides are timed end to end as a user runs them, file parsing included, on the same
# metrics (ndcg@10, mrr@10, recall@100, map, p@10); both print their means, which must
# agree to 1e-9. Prints the best wall time of each over REPEATS runs and the ratio.
#
# Usage: bench/eval_vs_pytrec_eval.sh [QUERIES] [DOCS_PER_QUERY]
# Env:   PYTHON (with pytrec-eval-terrier and numpy; see scripts/requirements-eval.txt),
#        POLYDENSE_BIN (skip the cargo build and use this binary), REPEATS (default 3),
#        BENCH_DIR (where the generated files go; default a temporary directory).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
QUERIES="${1:-10000}"
DOCS="${2:-1000}"
REPEATS="${REPEATS:-3}"
PYTHON="${PYTHON:-$HOME/.cache/polydense/venv-eval/bin/python}"
METRICS="ndcg@10,mrr@10,recall@100,map,p@10"

if [[ -z "${POLYDENSE_BIN:-}" ]]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/polydense/target}"
    (cd "$ROOT" && cargo build --release -q -p polydense-cli)
    POLYDENSE_BIN="$CARGO_TARGET_DIR/release/polydense"
fi

DIR="${BENCH_DIR:-$(mktemp -d)}"
if [[ ! -s "$DIR/run.trec" ]]; then
    echo "generating $QUERIES x $DOCS run in $DIR ..." >&2
    "$PYTHON" "$ROOT/bench/eval_gen.py" "$DIR" "$QUERIES" "$DOCS"
fi

# Best wall-clock nanoseconds of REPEATS runs of a command; its last stdout goes to $1.
best_of() {
    local out="$1"; shift
    local best=""
    for _ in $(seq "$REPEATS"); do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >"$out"
        t1=$(date +%s%N)
        if [[ -z "$best" ]] || (( t1 - t0 < best )); then best=$(( t1 - t0 )); fi
    done
    echo "$best"
}

ours=$(best_of "$DIR/polydense.json" env POLYDENSE_LOG=error "$POLYDENSE_BIN" eval \
    --qrels "$DIR/qrels.trec" --run "$DIR/run.trec" --metrics "$METRICS" --json)
theirs=$(best_of "$DIR/pytrec_eval.json" "$PYTHON" "$ROOT/bench/eval_pytrec.py" \
    "$DIR/qrels.trec" "$DIR/run.trec")

"$PYTHON" - "$DIR/polydense.json" "$DIR/pytrec_eval.json" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))["overall"]
b = json.load(open(sys.argv[2]))["overall"]
for k in b:
    assert abs(a[k] - b[k]) <= 1e-9, (k, a[k], b[k])
print("means agree to 1e-9:", ", ".join(f"{k}={b[k]:.6f}" for k in b))
EOF

lines=$(wc -l <"$DIR/run.trec")
echo "run: $QUERIES queries x $DOCS docs ($lines lines), $(nproc) cores, best of $REPEATS"
"$PYTHON" -c "
import sys
ours, theirs = int(sys.argv[1]) / 1e9, int(sys.argv[2]) / 1e9
print(f'polydense eval: {ours:.3f} s')
print(f'pytrec_eval:    {theirs:.3f} s')
print(f'ratio (pytrec_eval / polydense): {theirs / ours:.1f}x')
" "$ours" "$theirs"
