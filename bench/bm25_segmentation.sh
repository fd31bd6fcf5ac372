#!/usr/bin/env bash
# Segmentation ablation on the XQuAD-R paragraph task: polydense's ICU analysis against
# whitespace, regex-word and character tokenisations (all with Lucene BM25, k1=0.9 b=0.4),
# scored with nDCG@10, MRR@10 and Recall@100 on the test split.
#
# Usage: bench/bm25_segmentation.sh PARAGRAPH_DIR [LANGS]   (PARAGRAPH_DIR from
#   `polydense data prepare xquad-r --task paragraph`; LANGS default "th zh en"). A query a
# tokenisation leaves without any known token scores 0 (--missing-as-zero).
# PYTHON needs bm25s; POLYDENSE is the polydense binary (default: on PATH).
set -euo pipefail
DIR=${1:?usage: bench/bm25_segmentation.sh PARAGRAPH_DIR [LANGS]}; LANGS=${2:-th zh en}
PYTHON=${PYTHON:-python3}; PD=${POLYDENSE:-polydense}
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
for l in $LANGS; do
  d="$DIR/$l"
  awk 'NR>1{print $1, 0, $2, $3}' "$d/qrels/test.tsv" > "$work/$l.qrels"
  "$PD" bm25 index --corpus "$d/corpus.jsonl" --index "$work/idx-$l" --lang "$l" 2>/dev/null
  "$PD" bm25 search --index "$work/idx-$l" --queries "$d/queries.jsonl" --out "$work/$l/icu.trec" --k 100 2>/dev/null
  "$PYTHON" "$root/bench/bm25_segmentation.py" "$d" "$work/$l"
  for run in icu whitespace regex-words characters; do
    printf '%s %-12s ' "$l" "$run"
    "$PD" eval --qrels "$work/$l.qrels" --run "$work/$l/$run.trec" --metrics ndcg@10,mrr@10,recall@100 --missing-as-zero --json 2>/dev/null \
      | "$PYTHON" -c 'import json,sys; m=json.load(sys.stdin); m=m.get("all", m.get("overall", m)); print(json.dumps(m))'
  done
done
