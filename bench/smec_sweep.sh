#!/usr/bin/env bash
# The SMEC hyperparameters the paper leaves open, swept on the dev split (never test) of the
# XQuAD-R pooled paragraph task, e5-small frozen, one epoch per stage, 192 → 96 → 48 → 24.
# Each arm changes one setting of a base and is compared with that base at 96 and 48 dims by
# the paired randomization test:
#   ADS (base smrl-ads: Gumbel τ 1.0 → 0.1, selection lr 0.05, rank weight 1.0):
#     tau-end-0.5, tau-end-0.01, sel-lr-0.01, sel-lr-0.2, rank-0.1, rank-0.3
#   S-XBM (base smrl-sxbm: queue 4096, top-8): topk-2, topk-32, queue-1024
#   and smrl (neither) as the reference of both.
# Reuses bench/smec_ablation.sh's tree (its data, heads' embedding cache and retrieve cache).
# Writes $RUNS/smec/sweep/summary.md.
#
# Usage: bench/smec_sweep.sh   Env: POLYDENSE (binary; default: build release), RUNS (runs)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
. bench/polydense.sh
PD=$POLYDENSE
W=$RUNS/smec
S=$W/sweep
PAR=$W/data
mkdir -p "$S/configs"
[ -f $PAR/all/corpus.jsonl ] || $PD data prepare xquad-r --task paragraph --out $PAR
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$S/load.txt"

arm() { # name, base (smrl|smrl-ads|smrl-sxbm), extra [head] lines
  local ads=false sxbm=false
  [ $2 = smrl-ads ] && ads=true
  [ $2 = smrl-sxbm ] && sxbm=true
  cat > $S/configs/$1.toml <<TOML
model = "e5-small"
data = "$PAR/all"
split = "train"
out = "$S/heads/$1/model"
cache = "$W/heads/embeddings"
max_length = 256

[head]
kind = "smec"
dims = [192, 96, 48, 24]
epochs = 1
ads = $ads
sxbm = $sxbm
$3
TOML
  echo "$1 $2" >> $S/arms.txt
}
: > $S/arms.txt
arm smrl smrl ''
arm smrl-ads smrl-ads ''
arm tau-end-0.5 smrl-ads 'gumbel_temperature_end = 0.5'
arm tau-end-0.01 smrl-ads 'gumbel_temperature_end = 0.01'
arm sel-lr-0.01 smrl-ads 'selection_lr = 0.01'
arm sel-lr-0.2 smrl-ads 'selection_lr = 0.2'
arm rank-0.1 smrl-ads 'rank_weight = 0.1'
arm rank-0.3 smrl-ads 'rank_weight = 0.3'
arm smrl-sxbm smrl-sxbm ''
arm topk-2 smrl-sxbm 'top_k = 2'
arm topk-32 smrl-sxbm 'top_k = 32'
arm queue-1024 smrl-sxbm 'queue = 1024'

while read -r name base; do
  [ -f $S/heads/$name/model/compress.json ] || $PD compress train --config $S/configs/$name.toml \
    2> $S/$name.log
  [ -f $S/eval/$name/dims.json ] || $PD retrieve --model $S/heads/$name/model --data $PAR/all \
    --split dev --k 100 --max-length 256 --dims 96,48 --cache $W/cache-paragraph-backbone \
    --out $S/eval/$name > /dev/null
done < $S/arms.txt
while read -r name base; do
  [ $name = $base ] && continue
  for d in 96 48; do
    f=$S/eval/$name/vs-base-$d.json
    [ -f $f ] || $PD eval compare --qrels $PAR/all/qrels/dev.tsv --per-lang $PAR/all/queries.jsonl \
      $S/eval/$name/dim-$d/run.trec $S/eval/$base/dim-$d/run.trec --json --out $f > /dev/null
  done
done < $S/arms.txt
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$S/load.txt"
python3 bench/smec_sweep_report.py "$S" | tee "$S/summary.md"
