#!/usr/bin/env bash
# AXL-ICT ablation on XQuAD-R: does ICT-P improve with adversarial negatives written from the
# positive and chosen by the model being trained? Arms with the same seed, model (e5-small),
# data, epochs (6), batch size (16) and steps as the ICT ablation (bench/ict_ablation.sh),
# differing only in their negatives:
#   ict-p       ICT-P, 1 BM25 negative per query (the ICT ablation's arm)
#   ict-p-2neg  ICT-P, 2 BM25 negatives: the same passages per step as the arms below
#   fixed       ICT-P + 1 rule perturbation per query, the public code's rule (keep when
#               sim(q, neg) ≥ 0.8·sim(q, pos); its 60% overlap cap would reject every rule
#               perturbation of a paragraph, so the cap is lifted to compare the rules alone)
#   dynamic     ICT-P + 1 rule perturbation per query, the method's rule: likely false
#               negatives dropped, the hardest quarter kept, re-chosen at every clustering
#   dynamic-llm as dynamic, with LLM perturbations (one prompt per kind) added to the pool of
#               the English examples, the language the offline LLM writes (opt-in: ARMS)
# (+ 1 BM25 negative each). Perturbations: configs/mine-perturb.toml (numbers, names,
# negation where a rule exists). Data: the pooled paragraph task in 4 languages (en, de,
# zh, ar), EXAMPLES training examples (every s-th line of the mined file, as the ICT
# ablation takes them). Each model is evaluated on the test split with `polydense retrieve`
# and compared with ict-p by `polydense eval compare` (paired randomization, per language).
# Prints (and writes $AXL/table.md) per-language nDCG@10 and MRR@10 with p-values, the
# generated/kept/rejected counts, wall times, and examples of kept and rejected negatives.
#
# Usage: bench/axl_ablation.sh          (~40 min on 2 quiet cores)
# Env: POLYDENSE (binary; default: build release), RUNS (default runs/), EXAMPLES (default 96),
#   SPLIT (default test), ARMS (default "ict-p ict-p-2neg fixed dynamic"), LLM_TOML (for
#   dynamic-llm: a file holding an [llm] table, e.g. a llama.cpp server; default in process).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
EXAMPLES=${EXAMPLES:-96}
SPLIT=${SPLIT:-test}
ARMS=${ARMS:-"ict-p ict-p-2neg fixed dynamic"}
. bench/polydense.sh
PD=$POLYDENSE
AXL=$RUNS/axl
DATA=$AXL/data
mkdir -p "$AXL"

[ -f "$DATA/all/corpus.jsonl" ] || $PD data prepare xquad-r --task paragraph \
  --langs en,de,zh,ar --no-per-language --out "$DATA"
if [ ! -f "$AXL/all.perturb.jsonl" ]; then
  start=$(date +%s.%N)
  $PD mine --config configs/mine-perturb.toml --dataset "$DATA/all" --output "$AXL/all.perturb.jsonl"
  echo "$start $(date +%s.%N)" | awk '{printf "%.1f\n", $2 - $1}' > "$AXL/mine_seconds"
fi
total=$(wc -l < "$AXL/all.perturb.jsonl")
stride=$(( total / EXAMPLES ))
[ "$stride" -ge 1 ] || stride=1
awk -v s="$stride" -v n="$EXAMPLES" '(NR - 1) % s == 0 && c < n { print; c++ }' \
  "$AXL/all.perturb.jsonl" > "$AXL/train.jsonl"
# The ICT-P arms train on the same examples without the generated negatives.
python3 - "$AXL/train.jsonl" "$AXL/train.mined.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        e = json.loads(line)
        e["negative_passages"] = [n for n in e["negative_passages"] if n.get("source") != "perturb"]
        out.write(json.dumps(e, ensure_ascii=False) + "\n")
PY
echo "training on $(wc -l < "$AXL/train.jsonl") of $total examples (every ${stride}th)" >&2

# dynamic-llm: LLM perturbations for the English examples of the sample, mined on a BEIR
# directory holding only the sample's queries, then added to the same examples' pools.
if [[ " $ARMS " == *" dynamic-llm "* ]] && [ ! -f "$AXL/train.llm.jsonl" ]; then
  sub=$AXL/llm-data
  mkdir -p "$sub/qrels"
  ln -sf "$(cd "$DATA/all" && pwd)/corpus.jsonl" "$sub/corpus.jsonl"
  python3 - "$AXL/train.jsonl" "$DATA/all" "$sub" <<'PY'
import json, sys
train, data, sub = sys.argv[1:]
ids = [json.loads(l)["query_id"] for l in open(train)]
want = set(ids)
qs = {q["_id"]: l for l in open(f"{data}/queries.jsonl") for q in [json.loads(l)] if q["_id"] in want}
open(f"{sub}/queries.jsonl", "w").writelines(qs[i] for i in ids)
lines = [l for l in open(f"{data}/qrels/train.tsv") if l.split("\t")[0] in want]
open(f"{sub}/qrels/train.tsv", "w").writelines(["query-id\tcorpus-id\tscore\n"] + [l for l in lines if not l.startswith("query-id")])
PY
  { cat configs/mine-perturb.toml
    printf '\n[[generator]]\nkind = "llm_perturb"\nlangs = ["en"]\n\n'
    if [ -n "${LLM_TOML:-}" ]; then cat "$LLM_TOML"; else printf '[llm]\nbackend = "gguf"\nmodel = "smollm2"\n'; fi
    printf 'cache = "%s"\n' "$AXL/llm-cache.jsonl"
  } > "$AXL/mine-llm.toml"
  start=$(date +%s.%N)
  $PD mine --config "$AXL/mine-llm.toml" --dataset "$sub" --output "$AXL/llm.mined.jsonl"
  echo "$start $(date +%s.%N)" | awk '{printf "%.1f\n", $2 - $1}' > "$AXL/llm_mine_seconds"
  python3 - "$AXL/train.jsonl" "$AXL/llm.mined.jsonl" "$AXL/train.llm.jsonl" <<'PY'
import json, sys
llm = {}
for l in open(sys.argv[2]):
    e = json.loads(l)
    llm[e["query_id"]] = [n for n in e["negative_passages"] if n.get("source") == "llm_perturb"]
with open(sys.argv[3], "w") as out:
    for l in open(sys.argv[1]):
        e = json.loads(l)
        e["negative_passages"] += llm.get(e["query_id"], [])
        out.write(json.dumps(e, ensure_ascii=False) + "\n")
PY
fi

for arm in $ARMS; do
  out=$AXL/$arm
  case $arm in
    ict-p) args=(--config configs/ict/ict-p.toml --train-file "$AXL/train.mined.jsonl") ;;
    ict-p-2neg) args=(--config configs/ict/ict-p.toml --train-file "$AXL/train.mined.jsonl" --negatives 2) ;;
    fixed) args=(--config configs/axl-ict.toml --train-file "$AXL/train.jsonl"
      --adversarial.mode fixed --adversarial.max-overlap 1.0) ;;
    dynamic) args=(--config configs/axl-ict.toml --train-file "$AXL/train.jsonl") ;;
    dynamic-llm) args=(--config configs/axl-ict.toml --train-file "$AXL/train.llm.jsonl") ;;
    *) echo "unknown arm $arm" >&2; exit 2 ;;
  esac
  if [ ! -d "$out/model" ]; then
    resume=()
    [ -f "$out/checkpoints/latest" ] && resume=(--resume)
    start=$(date +%s.%N)
    $PD train "${args[@]}" --out-dir "$out" "${resume[@]}"
    end=$(date +%s.%N)
    prev=0; [ -f "$out/train_seconds" ] && prev=$(cat "$out/train_seconds")
    echo "$prev $start $end" | awk '{printf "%.1f\n", $1 + $3 - $2}' > "$out/train_seconds"
    echo "load average after $arm: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$AXL/load.txt"
  fi
  [ -f "$AXL/eval/$arm/metrics.json" ] || $PD retrieve --model "$out/model" \
    --data "$DATA/all" --split "$SPLIT" --out "$AXL/eval/$arm" --batch-size 32 --max-length 128
  if [ "$arm" != ict-p ] && [ ! -f "$AXL/eval/$arm/vs-ict-p.json" ]; then
    $PD eval compare "$AXL/eval/$arm/run.trec" "$AXL/eval/ict-p/run.trec" \
      --qrels "$DATA/all/qrels/$SPLIT.tsv" --metrics ndcg@10,mrr@10 \
      --per-lang "$DATA/all/queries.jsonl" --json --out "$AXL/eval/$arm/vs-ict-p.json" > /dev/null
  fi
done

python3 bench/axl_ablation_report.py "$AXL" $ARMS | tee "$AXL/table.md"
