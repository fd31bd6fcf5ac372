#!/usr/bin/env bash
# The first real result of the trainer, end to end with one command: XQuAD-R (pooled paragraph
# task) -> BM25 negatives -> fine-tune e5-small (configs/train-xquad-r-e5-small.toml) -> test
# nDCG@10 / MRR@10 / Recall@100 per language for the fine-tuned model, zero-shot e5-small and
# BM25, and paired randomization tests of fine-tuned vs each.
#
# Usage: bench/trainer_xquad_r.sh [extra `polydense train` flags...]
# Env: POLYDENSE (the binary; default: build the release one), RUNS (default runs/).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
. bench/polydense.sh
PD=$POLYDENSE
DATA=data/xquad-r/paragraph
CONFIG=configs/train-xquad-r-e5-small.toml
OUT=$RUNS/train/xquad-r-e5-small
TEST=$RUNS/test/xquad-r-all

[ -f $DATA/all/corpus.jsonl ] || $PD data prepare xquad-r --task paragraph --out $DATA
[ -f $RUNS/mine/xquad-r-all.bm25.jsonl ] || $PD mine --config configs/mine-bm25.toml \
  --dataset $DATA/all --output $RUNS/mine/xquad-r-all.bm25.jsonl
resume=()
[ -f $OUT/checkpoints/latest ] && resume=(--resume)
[ -d $OUT/model ] || $PD train --config $CONFIG --out-dir $OUT \
  --train-file $RUNS/mine/xquad-r-all.bm25.jsonl "${resume[@]}" "$@"

mkdir -p $TEST
$PD retrieve --model e5-small --data $DATA/all --split test --out $TEST/zero-shot --batch-size 64
$PD retrieve --model $OUT/model --data $DATA/all --split test --out $TEST/fine-tuned --batch-size 64
[ -d $TEST/bm25-index ] || $PD bm25 index --corpus $DATA/all/corpus.jsonl --index $TEST/bm25-index
$PD bm25 search --index $TEST/bm25-index --queries $DATA/all/queries.jsonl --out $TEST/bm25.trec

for sys in zero-shot fine-tuned; do
  $PD eval --qrels $DATA/all/qrels/test.tsv --run $TEST/$sys/run.trec \
    --per-lang $DATA/all/queries.jsonl --out $TEST/$sys.eval.json
done
$PD eval --qrels $DATA/all/qrels/test.tsv --run $TEST/bm25.trec \
  --per-lang $DATA/all/queries.jsonl --out $TEST/bm25.eval.json
for base in zero-shot bm25; do
  run=$TEST/$base/run.trec; [ $base = bm25 ] && run=$TEST/bm25.trec
  echo "== fine-tuned vs $base"
  $PD eval compare --qrels $DATA/all/qrels/test.tsv $TEST/fine-tuned/run.trec "$run" \
    --out $TEST/fine-tuned-vs-$base.json
done
