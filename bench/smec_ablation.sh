#!/usr/bin/env bash
# SMEC against the compression baselines, on e5-small (384 dims, frozen) at 192, 96, 48 and
# 24 dims, evaluated on the XQuAD-R pooled paragraph task and the LAReQA sentence pool (the
# demo's article split; test queries only). Heads train on the paragraph task's train pairs
# (9,416 queries, each with its paragraph in all 11 languages: 103,576 pairs) and are
# evaluated on both pools. Arms:
#   truncate      the backbone's own prefixes
#   pca           uncentred principal axes of the train vectors
#   mrl           linear adaptor, Matryoshka loss at 384/192/96/48/24 at once, 4 epochs
#   smrl          SMEC with SMRL only (prefix selection), 4 stages × 1 epoch (same steps)
#   smrl-ads      + ADS (Gumbel top-k selection and the rank loss)
#   smec          + S-XBM (queue 4096, top-8): the full method
#   smrl-sxbm     SMRL + S-XBM without ADS, and smrl-ads-norank ADS without the rank loss:
#                 which part of ADS costs what
#   mrl-encoder   e5-small fine-tuned with the Matryoshka loss (40 steps of 16 queries with
#                 one BM25 negative, the demo's budget), then truncated
# Each run is compared with `mrl` at 96 and 48 dims by the paired randomization test, overall
# and per language. Writes $RUNS/smec/summary.md.
#
# Usage: bench/smec_ablation.sh   Env: POLYDENSE (binary; default: build release), RUNS (runs),
#        DATA (an XQuAD-R paragraph BEIR tree to reuse, e.g. runs/clpl/data),
#        TRAIN (a training file mined by bench/smec_mine.toml to reuse, e.g. runs/clpl/train.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
. bench/polydense.sh
PD=$POLYDENSE
W=$RUNS/smec
mkdir -p "$W/configs" "$W/heads"
PAR=${DATA:-$W/data}
LAR=$W/lareqa
DIMS=384,192,96,48,24
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$W/load.txt"
[ -f $PAR/all/corpus.jsonl ] || $PD data prepare xquad-r --task paragraph --out $PAR
[ -f $LAR/all/corpus.jsonl ] || $PD data prepare xquad-r --task lareqa --out $LAR

head_config() { # name, [head] body
  cat > $W/configs/$1.toml <<TOML
model = "e5-small"
data = "$PAR/all"
split = "train"
out = "$W/heads/$1/model"
cache = "$W/heads/embeddings"
max_length = 256

[head]
$2
TOML
}
head_config truncate 'kind = "truncate"'
head_config pca 'kind = "pca"'
head_config mrl 'kind = "mrl"
dims = [384, 192, 96, 48, 24]
epochs = 4'
head_config smrl 'kind = "smec"
dims = [192, 96, 48, 24]
epochs = 1
ads = false
sxbm = false'
head_config smrl-ads 'kind = "smec"
dims = [192, 96, 48, 24]
epochs = 1
sxbm = false'
head_config smec 'kind = "smec"
dims = [192, 96, 48, 24]
epochs = 1'
head_config smrl-sxbm 'kind = "smec"
dims = [192, 96, 48, 24]
epochs = 1
ads = false'
head_config smrl-ads-norank 'kind = "smec"
dims = [192, 96, 48, 24]
epochs = 1
rank_weight = 0.0
sxbm = false'
HEADS=(truncate pca mrl smrl smrl-ads smec smrl-sxbm smrl-ads-norank)

evaluate() { # arm, model
  for task in paragraph lareqa; do
    data=$PAR; [ $task = lareqa ] && data=$LAR
    [ -f $W/eval/$1/$task/dims.json ] || $PD retrieve --model $2 --data $data/all --split test \
      --k 100 --max-length 256 --dims $DIMS --cache $W/cache-$task-${3:-backbone} \
      --out $W/eval/$1/$task
  done
}

for h in "${HEADS[@]}"; do
  [ -f $W/heads/$h/model/compress.json ] || $PD compress train --config $W/configs/$h.toml \
    2> >(tee $W/heads/$h.log >&2)
  evaluate $h $W/heads/$h/model
done

# The Matryoshka-trained encoder: the CLPL ablation's mining recipe and budget.
if [ ! -d $W/mrl-encoder/model ]; then
  [ -n "${TRAIN:-}" ] && [ ! -f $W/train.jsonl ] && cp "$TRAIN" $W/train.jsonl
  [ -f $W/train.jsonl ] || { sed "s#^output = .*#output = \"$W/train.jsonl\"#; s#^dataset = .*#dataset = \"$PAR/all\"#" \
    bench/smec_mine.toml > $W/mine.toml && $PD mine --config $W/mine.toml; }
  resume=(); [ -f $W/mrl-encoder/checkpoints/latest ] && resume=(--resume)
  /usr/bin/time -v $PD train --model e5-small --train-file $W/train.jsonl --negatives 1 \
    --batch-size 16 --max-query-length 32 --max-passage-length 128 --max-steps 40 --lr 3e-5 \
    --warmup-steps 5 --seed 42 --checkpoint-every 10 --keep-checkpoints 1 \
    --loss.kind matryoshka --loss.dims $DIMS --loss.temperature 0.05 \
    --out-dir $W/mrl-encoder "${resume[@]}" 2> >(tee $W/mrl-encoder.train.log >&2)
fi
evaluate mrl-encoder $W/mrl-encoder/model mrl-encoder

for arm in "${HEADS[@]}" mrl-encoder; do
  [ $arm = mrl ] && continue
  for task in paragraph lareqa; do
    data=$PAR; [ $task = lareqa ] && data=$LAR
    for d in 96 48; do
      f=$W/eval/$arm/$task/vs-mrl-$d.json
      [ -f $f ] || $PD eval compare --qrels $data/all/qrels/test.tsv --per-lang $data/all/queries.jsonl \
        $W/eval/$arm/$task/dim-$d/run.trec $W/eval/mrl/$task/dim-$d/run.trec --json --out $f > /dev/null
    done
  done
done
# The same index in int8 (a scale per dim): quality and size against f32.
[ -f $W/eval/smrl-int8/paragraph/dims.json ] || $PD retrieve --model $W/heads/smrl/model \
  --data $PAR/all --split test --k 100 --max-length 256 --dims $DIMS --dtype int8 \
  --cache $W/cache-paragraph-backbone --out $W/eval/smrl-int8/paragraph
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$W/load.txt"
python3 bench/smec_ablation_report.py "$W" "${HEADS[@]}" mrl-encoder | tee "$W/summary.md"
