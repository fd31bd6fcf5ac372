#!/usr/bin/env bash
# Seconds per step of the whole trainer (`polydense train`: tokenising, batch assembly,
# forward/backward, clipping off, AdamW, metrics.jsonl) against the PyTorch step of
# bench/train_step_pytorch.py (sentence-transformers model, MNRL's in-batch cross-entropy at
# scale 20, AdamW, pre-tokenised): all-MiniLM-L6-v2, 32 XQuAD-R English questions + their
# contexts, seq <= 128, no hard negatives, 2 threads. Both sides take the same batches (the
# file's order) and pad each to its own longest text. Prints each, the ratio, and peak RSS.
# PYTHON=/path/to/python with torch + sentence-transformers; STEPS=n (8; the first is warm-up);
# ROUNDS=n (3) alternating runs of each side.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-8}
ROUNDS=${ROUNDS:-3}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/polydense/target}
cargo build --release -p polydense-cli >/dev/null 2>&1
PD=${POLYDENSE:-$CARGO_TARGET_DIR/release/polydense}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# One example per XQuAD-R English paragraph (its first question and the paragraph), shuffled
# once with a fixed seed; both sides then take the batches in file order, so they compute the
# same batches.
"$PYTHON" bench/xquad_en_train.py "$work/train.jsonl"
# Run by run the machine's speed drifts (shared hosts); the two sides alternate ROUNDS times
# and the medians are compared.
log=$(mktemp)
ours_all=(); theirs_all=(); ours_rss=0; theirs_rss=0
for round in $(seq "$ROUNDS"); do
  rm -rf "$work/run"
  /usr/bin/time -v "$PD" train --model minilm-l6 --train-file "$work/train.jsonl" --out-dir "$work/run" \
    --sampler sequential --batch-size 32 --negatives 0 --max-query-length 128 --max-passage-length 128 \
    --max-steps "$STEPS" --max-grad-norm 0 --lr 1e-5 --weight-decay 0 >/dev/null 2>"$log"
  rss=$(awk '/Maximum resident set size/ {printf "%.0f", $6/1024}' "$log")
  ours_rss=$(( rss > ours_rss ? rss : ours_rss ))
  ours_all+=("$("$PYTHON" -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]) if "\"loss\"" in l][1:]
print(round(sum(32/r["examples_per_s"] for r in rows)/len(rows), 3))' "$work/run/metrics.jsonl")")
  /usr/bin/time -v env STEPS=$((STEPS - 1)) TRAIN_FILE="$work/train.jsonl" "$PYTHON" bench/train_step_pytorch.py >"$work/py.json" 2>"$log"
  rss=$(awk '/Maximum resident set size/ {printf "%.0f", $6/1024}' "$log")
  theirs_rss=$(( rss > theirs_rss ? rss : theirs_rss ))
  theirs_all+=("$("$PYTHON" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["mean_step_s"])' "$work/py.json")")
done
rm -f "$log"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" - "$ours_rss" "$theirs_rss" "${ours_all[*]}" "${theirs_all[*]}" <<'PY'
import statistics, sys
ours_rss, theirs_rss = sys.argv[1], sys.argv[2]
ours, theirs = ([float(x) for x in a.split()] for a in sys.argv[3:5])
mo, mt = statistics.median(ours), statistics.median(theirs)
print(f"polydense train  {mo:7.2f} s/step (median; runs {ours})   peak RSS {ours_rss:>6} MB")
print(f"PyTorch          {mt:7.2f} s/step (median; runs {theirs})   peak RSS {theirs_rss:>6} MB")
print(f"speed ratio polydense / PyTorch: {mt / mo:.2f}x   peak RSS ratio: {int(ours_rss) / int(theirs_rss):.2f}")
PY
