#!/usr/bin/env bash
# What the mixture-of-experts feed-forward costs per training step: `polydense train` on
# all-MiniLM-L6-v2 with the dense FFN against the same model upcycled to 2 experts per layer
# (top-1, intermediate dense), all weights trained and experts only. The batches of
# bench/trainer_step_vs_pytorch.sh (32 XQuAD-R English questions + contexts, seq <= 128, file
# order), 2 threads. The arms alternate ROUNDS times; prints medians, the ratio to dense, and
# peak RSS. STEPS=n (8; the first is warm-up), ROUNDS=n (3). Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-8}
ROUNDS=${ROUNDS:-3}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/polydense/target}
[ -n "${POLYDENSE:-}" ] || cargo build --release -p polydense-cli >/dev/null 2>&1
PD=${POLYDENSE:-$CARGO_TARGET_DIR/release/polydense}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 bench/xquad_en_train.py "$work/train.jsonl"
moe=(--moe.experts 2 --moe.top-k 1 --moe.layers intermediate --moe.router-scale unit)
declare -A args
args[dense]=""
args[moe-all]="${moe[*]}"
args[moe-experts]="${moe[*]} --only-train experts"
ARMS=(dense moe-all moe-experts)
declare -A times rss
log=$(mktemp)
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for a in "${ARMS[@]}"; do
    rm -rf "$work/run"
    # shellcheck disable=SC2086
    /usr/bin/time -v "$PD" train --model minilm-l6 --train-file "$work/train.jsonl" --out-dir "$work/run" \
      --sampler sequential --batch-size 32 --negatives 0 --max-query-length 128 --max-passage-length 128 \
      --max-steps "$STEPS" --max-grad-norm 0 --lr 1e-5 --weight-decay 0 ${args[$a]} >/dev/null 2>"$log"
    r=$(awk '/Maximum resident set size/ {printf "%.0f", $6/1024}' "$log")
    rss[$a]=$(( r > ${rss[$a]:-0} ? r : ${rss[$a]:-0} ))
    times[$a]="${times[$a]:-} $(python3 -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]) if "\"loss\"" in l][1:]
print(round(sum(32/r["examples_per_s"] for r in rows)/len(rows), 3))' "$work/run/metrics.jsonl")"
  done
done
rm -f "$log"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "${times[dense]}" "${times[moe-all]}" "${times[moe-experts]}" "${rss[dense]}" "${rss[moe-all]}" "${rss[moe-experts]}" <<'PY'
import statistics, sys
names = ["dense", "moe-all", "moe-experts"]
runs = [[float(x) for x in a.split()] for a in sys.argv[1:4]]
rss = sys.argv[4:7]
base = statistics.median(runs[0])
for n, r, m in zip(names, runs, rss):
    med = statistics.median(r)
    print(f"{n:12} {med:6.2f} s/step (median; runs {r})  {med / base:5.2f}x dense   peak RSS {m} MB")
PY
