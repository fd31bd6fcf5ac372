#!/usr/bin/env bash
# The LLM-enhanced hard negatives ablation (Rajapakse et al., extended; DESIGN.md), tested
# honestly: e5-small fine-tuned with the same steps, seed and batches on four training files
# that differ only in their negatives, mined from the same queries:
#   bm25   BM25 top-D without the positives, dedup, the 95% margin filter (the baseline)
#   judge  + the LLM judge (false negatives and easy negatives dropped)
#   gen    + 3 LLM-written negatives per example (through every filter, the judge included)
#   rag    + RAG selection (3 nearest other negatives as context, best half kept)
# The arms share one LLM cache, so each judgement is asked once and reused by later arms.
# Evaluated with `polydense retrieve` on the test articles; `polydense eval compare` gives the
# paired randomization test of each arm against bm25. Prints (and writes $OUT/table.md) per-
# language nDCG@10, MRR@10 and Recall@100, p-values, and per-arm mining counts: kept,
# dropped as easy, dropped as false negatives, generated, parse failures, LLM wall time.
#
# The offline LLM (SmolLM2-135M) is English-only, so by default the LLM stages run on the
# English train queries only (LANG=en), evaluated on the English test articles; with a
# server (LLM_TOML: a file holding an [llm] table, e.g. Ollama or llama.cpp) any language.
#
# Usage: bench/llm_negatives_ablation.sh
#   smoke (minutes): QUERIES=8 STEPS=4 DEPTH=6 bench/llm_negatives_ablation.sh
# Env: POLYDENSE (binary; default: build release), OUT (default runs/llm-ablation), LANG_
#   (default en), QUERIES (train queries mined, default 200), DEPTH (BM25 candidates judged
#   per query, default 12), N (BM25 negatives kept per query, default 4), STEPS (default 50),
#   LLM_TOML (an [llm] table; default the offline SmolLM2), ARMS (default "bm25 judge gen rag").
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/llm-ablation}
L=${LANG_:-en}
QUERIES=${QUERIES:-200}
DEPTH=${DEPTH:-12}
N=${N:-4}
STEPS=${STEPS:-50}
ARMS=${ARMS:-"bm25 judge gen rag"}
. bench/polydense.sh
PD=$POLYDENSE
DATA=data/xquad-r/paragraph
mkdir -p "$OUT"
[ -d "$DATA/$L" ] || $PD data prepare xquad-r --task paragraph --out "$DATA"
llm=${LLM_TOML:-}
[ -n "$llm" ] || { llm=$OUT/llm.toml; printf '[llm]\nbackend = "gguf"\nmodel = "smollm2"\n' > "$llm"; }

# One mining config per arm: the same miner and filters, each arm adding its stage.
config() {
  local arm=$1
  cat <<TOML
dataset = "$DATA/$L"
split = "train"
output = "$OUT/$arm/train.jsonl"
seed = 13
min_negatives = 1
max_queries = $QUERIES
checkpoint_every = 20

$(grep -v '^cache' "$llm")
cache = "$OUT/llm-cache.jsonl"

[[miner]]
kind = "bm25"
name = "bm25"
depth = $DEPTH
n = $N
sampling = "top"

[[filter]]
kind = "dedup"

[[filter]]
kind = "false_negative"
margin = 0.95
TOML
  case $arm in judge|gen|rag) printf '\n[[filter]]\nkind = "llm_judge"\nmin_hardness = 30\n' ;; esac
  case $arm in gen|rag) printf '\n[[generator]]\nkind = "llm_generate"\nn = 3\nmax_tokens = 384\n' ;; esac
  case $arm in rag) printf '\n[[filter]]\nkind = "rag_select"\nencoder = "%s"\nkeep_fraction = 0.5\n' "${ENCODER:-e5-small}" ;; esac
}

for arm in $ARMS; do
  mkdir -p "$OUT/$arm"
  config "$arm" > "$OUT/$arm/mine.toml"
  [ -f "$OUT/$arm/train.jsonl" ] || $PD mine --config "$OUT/$arm/mine.toml"
  if [ ! -d "$OUT/$arm/train/model" ]; then
    resume=(); [ -f "$OUT/$arm/train/checkpoints/latest" ] && resume=(--resume)
    $PD train --config configs/train-xquad-r-e5-small.toml --train-file "$OUT/$arm/train.jsonl" \
      --out-dir "$OUT/$arm/train" --dev-dir "$DATA/$L" --max-steps "$STEPS" \
      --warmup-steps $(( STEPS / 8 + 1 )) --eval-every "$STEPS" --checkpoint-every "$STEPS" "${resume[@]}"
  fi
  [ -f "$OUT/$arm/eval/metrics.json" ] || $PD retrieve --model "$OUT/$arm/train/model" \
    --data "$DATA/$L" --split test --out "$OUT/$arm/eval" --metrics ndcg@10,mrr@10,recall@100
done
for arm in $ARMS; do
  [ "$arm" = bm25 ] && continue
  $PD eval compare "$OUT/$arm/eval/run.trec" "$OUT/bm25/eval/run.trec" --qrels "$DATA/$L/qrels/test.tsv" \
    --metrics ndcg@10,mrr@10,recall@100 --json > "$OUT/$arm/compare.json"
done

python3 - "$OUT" "$ARMS" <<'PY' | tee "$OUT/table.md"
import json, os, sys
out, arms = sys.argv[1], sys.argv[2].split()
metrics = ["ndcg@10", "mrr@10", "recall@100"]
print("| arm | " + " | ".join(metrics) + " | p (vs bm25) |")
print("|---|" + "---|" * (len(metrics) + 1))
for arm in arms:
    m = json.load(open(os.path.join(out, arm, "eval", "metrics.json")))
    rows = {"all": m["overall"], **m.get("per_lang", {})}
    p = ""
    cmp = os.path.join(out, arm, "compare.json")
    if os.path.exists(cmp):
        c = json.load(open(cmp))
        p = ", ".join(f"{r['metric']} {r['diff']:+.4f} (p {r['p_value']:.3f})" for r in c["comparisons"])
    for lang, r in rows.items():
        print(f"| {arm} ({lang}) | " + " | ".join(f"{r[k]:.4f}" for k in metrics) + f" | {p if lang == 'all' else ''} |")
print()
print("| arm | examples | kept | dropped easy | dropped as false negatives | generated (kept) | parse failures | skipped | LLM wall s |")
print("|---|---|---|---|---|---|---|---|---|")
for arm in arms:
    s = json.load(open(os.path.join(out, arm, "train.jsonl.stats.json")))
    d = s.get("dropped", {}).get("llm_judge", {})
    c = s.get("counters", {})
    pf = sum(v.get("parse_failures", 0) for v in c.values())
    sk = sum(v.get("skipped", 0) for v in c.values())
    wall = sum(v.get("wall_ms", 0) for v in c.values()) / 1e3
    gen = f'{s.get("proposed", {}).get("llm_generate", 0)} ({s.get("kept", {}).get("llm_generate", 0)})'
    easy = sum(n for r, n in d.items() if r.startswith("easy"))
    fn = sum(n for r, n in d.items() if r.startswith("answers"))
    print(f"| {arm} | {s['examples']} | {sum(s['kept'].values())} | {easy} | {fn} | {gen} | {pf} | {sk} | {wall:.0f} |")
PY
