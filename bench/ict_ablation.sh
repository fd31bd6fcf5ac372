#!/usr/bin/env bash
# Iterative clustered training ablation (ICT, SIGIR'24; SAC-ICT; ACR-ICT) on XQuAD-R:
# six arms with the same seed, model (e5-small), data, epochs and batch size 16, differing
# only in how batches are drawn (configs/ict/*.toml):
#   dpr-bm   random batches + 1 BM25 negative
#   ict-p    clusters of positive-passage embeddings, re-clustered every epoch
#   ict-q    clusters of query embeddings, re-clustered every epoch
#   sac      ICT-P with a coarse-to-fine k schedule (scaled to the sample; see sac.toml)
#   acr      ICT-P re-clustered on loss drop / embedding drift / max gap
#   sac-acr  SAC's k at ACR's times
# Data: the pooled paragraph task in 4 languages (en, de, zh, ar), BM25 negatives from
# configs/mine-bm25.toml, and a deterministic sample of EXAMPLES training examples (every
# s-th line of the mined file). Each final model is evaluated on the test split with
# `polydense retrieve`; one markdown table is printed (and written to $ICT/table.md):
# overall and per-language nDCG@10 and MRR@10, clustering runs, clustering wall seconds
# (encode + k-means + drift probes + projection), training wall seconds (clustering included).
#
# Usage: bench/ict_ablation.sh [extra `polydense train` flags for every arm...]
#   full run (6 arms x 36 steps): bench/ict_ablation.sh
#   smoke run (2 epochs, 4 steps per arm; 38 min on 2 cores shared with compilers):
#     RUNS=/tmp/ict-smoke EXAMPLES=32 SPLIT=dev bench/ict_ablation.sh --epochs 2 --max-steps 4
# Env: POLYDENSE (the binary; default: build the release one), RUNS (default runs/),
#   EXAMPLES (training examples, default 96; the SAC schedule in the configs is scaled to
#   96), SPLIT (evaluation split, default test), ARMS (default all six).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
EXAMPLES=${EXAMPLES:-96}
SPLIT=${SPLIT:-test}
ARMS=${ARMS:-"dpr-bm ict-p ict-q sac acr sac-acr"}
. bench/polydense.sh
PD=$POLYDENSE
ICT=$RUNS/ict
DATA=$ICT/data
mkdir -p "$ICT"

[ -f "$DATA/all/corpus.jsonl" ] || $PD data prepare xquad-r --task paragraph \
  --langs en,de,zh,ar --no-per-language --out "$DATA"
[ -f "$ICT/all.bm25.jsonl" ] || $PD mine --config configs/mine-bm25.toml \
  --dataset "$DATA/all" --output "$ICT/all.bm25.jsonl"
total=$(wc -l < "$ICT/all.bm25.jsonl")
stride=$(( total / EXAMPLES ))
[ "$stride" -ge 1 ] || stride=1
awk -v s="$stride" -v n="$EXAMPLES" '(NR - 1) % s == 0 && c < n { print; c++ }' \
  "$ICT/all.bm25.jsonl" > "$ICT/train.jsonl"
echo "training on $(wc -l < "$ICT/train.jsonl") of $total examples (every ${stride}th)" >&2

for arm in $ARMS; do
  out=$ICT/$arm
  if [ ! -d "$out/model" ]; then
    resume=()
    [ -f "$out/checkpoints/latest" ] && resume=(--resume)
    start=$(date +%s.%N)
    $PD train --config "configs/ict/$arm.toml" --out-dir "$out" \
      --train-file "$ICT/train.jsonl" "${resume[@]}" "$@"
    end=$(date +%s.%N)
    # A resumed arm adds its time to what the interrupted part recorded.
    prev=0; [ -f "$out/train_seconds" ] && prev=$(cat "$out/train_seconds")
    echo "$prev $start $end" | awk '{printf "%.1f\n", $1 + $3 - $2}' > "$out/train_seconds"
  fi
  [ -f "$ICT/eval/$arm/metrics.json" ] || $PD retrieve --model "$out/model" \
    --data "$DATA/all" --split "$SPLIT" --out "$ICT/eval/$arm" --batch-size 32 --max-length 128
done

python3 - "$ICT" "$ARMS" > "$ICT/table.md" <<'PY'
import json, os, sys
ict, arms = sys.argv[1], sys.argv[2].split()
rows, langs = [], None
for arm in arms:
    report = json.load(open(os.path.join(ict, "eval", arm, "metrics.json")))
    langs = langs or sorted(report["per_lang"])
    runs = os.path.join(ict, arm, "clusters.jsonl")
    n_runs = sum(1 for _ in open(runs)) if os.path.exists(runs) else 0
    steps = [json.loads(l) for l in open(os.path.join(ict, arm, "metrics.jsonl"))]
    steps = [s for s in steps if "loss" in s]
    cluster_s = steps[-1].get("cluster_seconds", 0.0) if steps else 0.0
    train_s = float(open(os.path.join(ict, arm, "train_seconds")).read())
    rows.append((arm, report, n_runs, cluster_s, train_s, len(steps)))
metrics = ["ndcg@10", "mrr@10"]
head = ["arm"] + [f"{m} {l}" for m in metrics for l in ["all"] + langs]
head += ["steps", "clusterings", "cluster s", "train s"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for arm, rep, n_runs, cs, ts, steps in rows:
    cells = [arm]
    for m in metrics:
        cells.append(f"{rep['overall'][m]:.4f}")
        cells += [f"{rep['per_lang'][l][m]:.4f}" for l in langs]
    cells += [str(steps), str(n_runs), f"{cs:.1f}", f"{ts:.1f}"]
    print("| " + " | ".join(cells) + " |")
PY
cat "$ICT/table.md"
