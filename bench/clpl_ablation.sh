#!/usr/bin/env bash
# CLPL and the mixture-of-experts encoder against InfoNCE, on XQuAD-R (the demo's pooled
# paragraph task, article split and seed), with e5-small and the demo's budget: 40 steps of 16
# queries with one BM25 negative each, lr 3e-5, τ 0.05 for every arm (held equal, so only the
# loss and the encoder differ). Arms:
#   infonce          InfoNCE (the demo's recipe)
#   clpl             CLPL, λ 0.1
#   infonce-moe-exp  InfoNCE, two experts per layer, experts and gates trained only
#   clpl-moe-exp     CLPL, the same experts-only training
#   clpl-moe-all     CLPL, two experts per layer, every weight trained
# Each arm is scored on the test articles (2,464 queries, 11 languages pooled) and compared
# with `infonce` by the paired randomization test, overall and per language; its wall time,
# seconds per step and peak RSS are recorded. Writes $RUNS/clpl/summary.md.
#
# Usage: bench/clpl_ablation.sh   Env: POLYDENSE (binary; default: build release), RUNS (runs)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
. bench/polydense.sh
PD=$POLYDENSE
W=$RUNS/clpl
DATA=$W/data
mkdir -p "$W"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$W/load.txt"

[ -f $DATA/all/corpus.jsonl ] || $PD data prepare xquad-r --task paragraph --out $DATA
cat > $W/mine.toml <<TOML
dataset = "$DATA/all"
split = "train"
output = "$W/train.jsonl"
seed = 13
min_negatives = 1

[[miner]]
kind = "bm25"
name = "bm25"
depth = 100
from = 0
n = 4
sampling = "random"
k1 = 0.9
b = 0.4

[[filter]]
kind = "dedup"
by_id = true
by_text = true

[[filter]]
kind = "false_negative"
mode = "relative"
margin = 0.95
reference = "max"
TOML
[ -f $W/train.jsonl ] || $PD mine --config $W/mine.toml

base=(--model e5-small --train-file $W/train.jsonl --negatives 1 --batch-size 16
  --max-query-length 32 --max-passage-length 128 --max-steps 40 --lr 3e-5 --warmup-steps 5
  --seed 42 --checkpoint-every 10 --keep-checkpoints 1 --loss.temperature 0.05)
moe=(--moe.experts 2 --moe.top-k 1 --moe.layers intermediate --moe.router-scale unit)
declare -A arm
arm[infonce]="--loss.kind infonce"
arm[clpl]="--loss.kind clpl --loss.lambda 0.1"
arm[infonce-moe-exp]="--loss.kind infonce ${moe[*]} --only-train experts"
arm[clpl-moe-exp]="--loss.kind clpl --loss.lambda 0.1 ${moe[*]} --only-train experts"
arm[clpl-moe-all]="--loss.kind clpl --loss.lambda 0.1 ${moe[*]}"
ARMS=(infonce clpl infonce-moe-exp clpl-moe-exp clpl-moe-all)

[ -f $W/zero-shot/run.trec ] || $PD retrieve --model e5-small --data $DATA/all --split test \
  --k 100 --max-length 256 --out $W/zero-shot
for a in "${ARMS[@]}"; do
  if [ ! -d $W/$a/model ]; then
    resume=(); [ -f $W/$a/checkpoints/latest ] && resume=(--resume)
    # shellcheck disable=SC2086
    /usr/bin/time -v $PD train "${base[@]}" ${arm[$a]} --out-dir $W/$a "${resume[@]}" \
      2> >(tee $W/$a.train.log >&2)
  fi
  [ -f $W/$a/test/run.trec ] || $PD retrieve --model $W/$a/model --data $DATA/all --split test \
    --k 100 --max-length 256 --out $W/$a/test
  [ $a = infonce ] || $PD eval compare --qrels $DATA/all/qrels/test.tsv --per-lang $DATA/all/queries.jsonl \
    $W/$a/test/run.trec $W/infonce/test/run.trec --json --out $W/$a/vs-infonce.json > /dev/null
done
$PD eval compare --qrels $DATA/all/qrels/test.tsv --per-lang $DATA/all/queries.jsonl \
  $W/infonce/test/run.trec $W/zero-shot/run.trec --json --out $W/infonce/vs-zero-shot.json > /dev/null
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$W/load.txt"
python3 bench/clpl_ablation_report.py "$W" "${ARMS[@]}" | tee "$W/summary.md"
