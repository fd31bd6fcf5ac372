#!/usr/bin/env bash
# Fine-tuning levers against the zero-shot model on every view of XQuAD-R: the pooled
# paragraph task (all 11 languages in one corpus, the demo's test), the monolingual paragraph
# task (each query searched among its own language's paragraphs, qrels holding only the
# same-language paragraph) and, for the arms in LAREQA_ARMS, the LAReQA sentence pool.
# Every arm starts from e5-small with the demo's training file (mined again by the demo's
# config, so its passages carry their language), seed and batch, and changes one setting at
# a time (ARM below). Each is compared with zero-shot by the paired
# randomization test, overall and per language, and its first hits are broken down.
#
# It builds on a finished `polydense demo` (its data, negatives and, for the zero-shot and
# demo arms, its cached corpus vectors): run that first.
# Usage: bench/retrieval_quality.sh   Env: POLYDENSE (binary; default: build release),
#   RUNS (default runs; the demo's output is $RUNS/demo), ARMS (names to run, default all),
#   LAREQA_ARMS (default "zero-shot demo lr1e-5-t0.02")
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
. bench/polydense.sh
PD=$POLYDENSE
DEMO=$RUNS/demo
W=$RUNS/quality
DATA=$DEMO/data/all
GROUP='^[ps]-[a-z]+-(\d+)-'
[ -f $DEMO/train/model/config.json ] || { echo "run \`polydense demo --out $DEMO\` first" >&2; exit 1; }
mkdir -p $W/configs $W/eval $W/cache
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $W/load.txt

# Monolingual qrels: the pooled qrels' pairs whose document is in the query's language.
python3 - "$DATA" "$W/mono-qrels-test.tsv" <<'PY'
import json, sys
data, out = sys.argv[1], sys.argv[2]
lang = {}
for f in ("corpus.jsonl", "queries.jsonl"):
    for line in open(f"{data}/{f}"):
        d = json.loads(line)
        lang[d["_id"]] = d.get("lang")
rows = [l.rstrip("\n").split("\t") for l in open(f"{data}/qrels/test.tsv")]
keep = [r for r in rows[1:] if lang.get(r[0]) == lang.get(r[1])]
with open(out + ".tmp", "w") as f:
    f.write("\t".join(rows[0]) + "\n" + "".join("\t".join(r) + "\n" for r in keep))
import os; os.replace(out + ".tmp", out)
PY
MONO=$W/mono
mkdir -p $MONO/qrels
ln -sf "$(realpath $DATA/corpus.jsonl)" $MONO/corpus.jsonl
ln -sf "$(realpath $DATA/queries.jsonl)" $MONO/queries.jsonl
cp $W/mono-qrels-test.tsv $MONO/qrels/test.tsv
LAR=$W/lareqa
[ -f $LAR/all/corpus.jsonl ] || $PD data prepare xquad-r --task lareqa --no-per-language --out $LAR

# The demo's BM25 negatives, mined again: the same draws, and each passage's language.
if [ ! -f $W/train.jsonl ]; then
  sed "s#^output = .*#output = \"$(realpath -m $W/train.jsonl)\"#" $DEMO/configs/mine-bm25.toml > $W/configs/mine.toml
  $PD mine --config $W/configs/mine.toml 2> $W/mine.log
fi

# The arms: name and the keys of the demo's train.toml they set.
declare -A ARM
ARM[lr1e-5-t0.02]='lr = 0.00001|temperature = 0.02'
ARM[lr1e-5-t0.02-neg0]='lr = 0.00001|temperature = 0.02|negatives = 0'
ARM[lr1e-5-t0.01]='lr = 0.00001|temperature = 0.01'
ARM[lr5e-6-t0.02]='lr = 0.000005|temperature = 0.02'
ARM[lr1e-5-t0.02-same0.5]='lr = 0.00001|temperature = 0.02|same_lang_positive = 0.5'
ARM[lr5e-6-t0.01]='lr = 0.000005|temperature = 0.01'
ORDER=(zero-shot demo lr1e-5-t0.02 lr1e-5-t0.02-same0.5 lr1e-5-t0.02-neg0 lr1e-5-t0.01 lr5e-6-t0.02 lr5e-6-t0.01)
RUN_ARMS=(${ARMS:-${ORDER[@]}})
LAREQA_ARMS=${LAREQA_ARMS:-"zero-shot demo lr1e-5-t0.02 lr5e-6-t0.02"}

train_arm() { # name
  local cfg=$W/configs/$1.toml
  cp $DEMO/configs/train.toml $cfg
  sed -i "s#^out_dir = .*#out_dir = \"$W/train/$1\"#; s#^train_file = .*#train_file = \"$(realpath $W/train.jsonl)\"#" $cfg
  IFS='|' read -ra sets <<< "${ARM[$1]}"
  for s in "${sets[@]}"; do
    if grep -q "^${s%% =*} = " $cfg; then sed -i "s#^${s%% =*} = .*#$s#" $cfg
    else sed -i "/^negatives = /a $s" $cfg; fi
  done
  local resume=(); [ -f $W/train/$1/checkpoints/latest ] && resume=(--resume)
  [ -f $W/train/$1/model/config.json ] || $PD train --config $cfg "${resume[@]}" 2> $W/train-$1.log
}

evaluate() { # name, model, [cache to seed from]
  local c=$W/cache/$1
  mkdir -p $c
  [ -n "${3:-}" ] && [ ! -e $c/corpus-embeddings ] && ln -s "$(realpath $3)" $c/corpus-embeddings
  [ -f $W/eval/$1/pooled/metrics.json ] || $PD retrieve --model $2 --data $DATA --split test \
    --k 100 --max-length 256 --first-hit --group "$GROUP" --cache $c --out $W/eval/$1/pooled > /dev/null
  [ -f $W/eval/$1/mono/metrics.json ] || $PD retrieve --model $2 --data $MONO --split test \
    --k 100 --max-length 256 --same-lang --first-hit --cache $c --out $W/eval/$1/mono > /dev/null
  if [[ " $LAREQA_ARMS " == *" $1 "* ]] && [ ! -f $W/eval/$1/lareqa/metrics.json ]; then
    $PD retrieve --model $2 --data $LAR/all --split test --k 100 --max-length 128 --first-hit \
      --group "$GROUP" --cache $W/cache/$1-lareqa --out $W/eval/$1/lareqa > /dev/null
  fi
}

compare() { # name
  for task in pooled mono lareqa; do
    [ -f $W/eval/$1/$task/run.trec ] && [ -f $W/eval/zero-shot/$task/run.trec ] || continue
    local q=$DATA/qrels/test.tsv; [ $task = mono ] && q=$MONO/qrels/test.tsv
    [ $task = lareqa ] && q=$LAR/all/qrels/test.tsv
    local qs=$DATA/queries.jsonl; [ $task = lareqa ] && qs=$LAR/all/queries.jsonl
    [ -f $W/eval/$1/$task/vs-zero-shot.json ] || $PD eval compare $W/eval/$1/$task/run.trec \
      $W/eval/zero-shot/$task/run.trec --qrels $q --per-lang $qs --metrics ndcg@10,mrr@10,recall@100,map \
      --json --out $W/eval/$1/$task/vs-zero-shot.json > /dev/null
  done
}

for a in "${RUN_ARMS[@]}"; do
  case $a in
    zero-shot) evaluate zero-shot e5-small $DEMO/zero-shot/corpus-embeddings ;;
    demo) evaluate demo $DEMO/train/model $DEMO/fine-tuned/corpus-embeddings ;;
    *) train_arm $a; evaluate $a $W/train/$a/model ;;
  esac
  [ $a = zero-shot ] || compare $a
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $W/load.txt
python3 bench/retrieval_quality_report.py $W "${ORDER[@]}" | tee $W/summary.md
