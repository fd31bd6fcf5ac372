#!/usr/bin/env bash
# BM25 baselines on XQuAD-R: per language on the paragraph task (each language's own
# paragraphs), and on the LAReQA pool (every sentence of every language; the answer sentence
# and its 10 translations are relevant). Reports nDCG@10, MRR@10 and Recall@100 on the test
# split, k1=0.9 b=0.4 (pyserini's defaults).
#
# Usage: scripts/bm25-baselines.sh OUT_DIR     (needs `polydense` on PATH or POLYDENSE=path)
set -euo pipefail
OUT=${1:?usage: scripts/bm25-baselines.sh OUT_DIR}
PD=${POLYDENSE:-polydense}
LANGS="ar de el en es hi ru th tr vi zh"
mkdir -p "$OUT"
for task in paragraph lareqa; do
  [ -d "$OUT/$task/all" ] || "$PD" data prepare xquad-r --task "$task" --out "$OUT/$task" >/dev/null
done
trec_qrels() { awk 'NR>1{print $1, 0, $2, $3}' "$1" > "$2"; }
echo "== paragraph task: per-language corpus, test split =="
for l in $LANGS; do
  d="$OUT/paragraph/$l"
  "$PD" bm25 index --corpus "$d/corpus.jsonl" --index "$OUT/idx/paragraph-$l" --lang "$l" 2>/dev/null
  "$PD" bm25 search --index "$OUT/idx/paragraph-$l" --queries "$d/queries.jsonl" \
    --out "$OUT/runs/paragraph-$l.trec" --k 100 2>/dev/null
  trec_qrels "$d/qrels/test.tsv" "$OUT/runs/paragraph-$l.qrels"
  echo "-- $l"
  "$PD" eval --qrels "$OUT/runs/paragraph-$l.qrels" --run "$OUT/runs/paragraph-$l.trec" \
    --metrics ndcg@10,mrr@10,recall@100 --out "$OUT/runs/paragraph-$l.json"
done
echo "== lareqa: one pool of all sentences, each analysed in its own language, test split =="
d="$OUT/lareqa/all"
"$PD" bm25 index --corpus "$d/corpus.jsonl" --index "$OUT/idx/lareqa-all" 2>/dev/null
"$PD" bm25 search --index "$OUT/idx/lareqa-all" --queries "$d/queries.jsonl" \
  --out "$OUT/runs/lareqa-all.trec" --k 100 2>/dev/null
trec_qrels "$d/qrels/test.tsv" "$OUT/runs/lareqa-all.qrels"
"$PD" eval --qrels "$OUT/runs/lareqa-all.qrels" --run "$OUT/runs/lareqa-all.trec" \
  --metrics ndcg@10,mrr@10,recall@100 --per-lang "$d/queries.jsonl" --out "$OUT/runs/lareqa-all.json"
