#!/usr/bin/env bash
# The in-process LLM backend (candle, `polydense llm ask`) against llama.cpp (the
# llama-cpp-python build of scripts/llamacpp-env) on the same GGUF (SmolLM2-135M-Instruct
# Q4_1), prompts (bench/llm_prompts.txt), chat template, greedy decoding and threads, in one
# run: prompt tokens/s, generation tokens/s and peak RSS of each side, and the ratios.
# ROUNDS alternating rounds; medians reported (the host's speed drifts run to run).
#
# Usage: bench/llm_inprocess_vs_llamacpp.sh      (~3 min on 2 quiet cores, after the build)
# Env: POLYDENSE (binary; default: build release), THREADS (default 2), ROUNDS (default 3),
#   MAX_TOKENS (default 64), PROMPTS (default bench/llm_prompts.txt), REQUANTIZE (1:
#   polydense re-encodes Q4_1 as Q8_0, its default; 0: candle's scalar Q4_1 kernels),
#   OUT (default runs/bench-llm).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
MAX_TOKENS=${MAX_TOKENS:-64}
PROMPTS=${PROMPTS:-bench/llm_prompts.txt}
REQUANTIZE=${REQUANTIZE:-1}
OUT=${OUT:-runs/bench-llm}
MODEL=${POLYDENSE_HOME:-$HOME/.cache/polydense}/models/smollm2/model.gguf
SYSTEM="You are a careful assistant for building search training data."
[ -f "$MODEL" ] || { echo "missing $MODEL: run ./scripts/setup --assets" >&2; exit 1; }
. bench/polydense.sh
PY=$(scripts/llamacpp-env | tail -n1)
mkdir -p "$OUT"
quant=(); [ "$REQUANTIZE" = 1 ] || quant=(--no-requantize)

# Peak RSS of one command, in KiB, written to $2 (the command's stdout goes to $1).
measure() {
  local out=$1 rss=$2; shift 2
  python3 - "$out" "$rss" "$@" <<'PY'
import resource, subprocess, sys
out, rss, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, "w") as f:
    subprocess.run(cmd, stdout=f, check=True)
open(rss, "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
PY
}

for r in $(seq 1 "$ROUNDS"); do
  echo "[bench] round $r/$ROUNDS" >&2
  measure "$OUT/polydense.$r.jsonl" "$OUT/polydense.$r.rss" \
    "$POLYDENSE" llm ask --model "$MODEL" --threads "$THREADS" "${quant[@]}" \
    --prompt-file "$PROMPTS" --system "$SYSTEM" --max-tokens "$MAX_TOKENS" --json
  measure "$OUT/llamacpp.$r.jsonl" "$OUT/llamacpp.$r.rss" \
    "$PY" bench/llm_llamacpp.py "$MODEL" "$PROMPTS" "$SYSTEM" "$MAX_TOKENS" "$THREADS"
done

python3 - "$OUT" "$ROUNDS" "$THREADS" <<'PY' | tee "$OUT/table.md"
import json, statistics, sys
out, rounds, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(side, r):
    rows = [json.loads(l) for l in open(f"{out}/{side}.{r}.jsonl")]
    p = sum(x["prompt_tokens"] for x in rows); g = sum(x["completion_tokens"] for x in rows)
    pm = sum(x["prompt_ms"] for x in rows); gm = sum(x["generate_ms"] for x in rows)
    rss = int(open(f"{out}/{side}.{r}.rss").read()) / 1024
    return p / pm * 1e3, g / gm * 1e3, rss, rows
res = {}
for side in ["polydense", "llamacpp"]:
    runs = [load(side, r) for r in range(1, rounds + 1)]
    res[side] = [statistics.median(x[i] for x in runs) for i in range(3)] + [runs[0][3]]
print(f"SmolLM2-135M-Instruct Q4_1, {threads} threads, greedy, median of {rounds} rounds\n")
print("| side | prompt tok/s | generate tok/s | peak RSS MiB |")
print("|---|---|---|---|")
for side, (p, g, rss, _) in res.items():
    print(f"| {side} | {p:.1f} | {g:.1f} | {rss:.0f} |")
a, b = res["polydense"], res["llamacpp"]
print(f"| ratio polydense/llama.cpp | {a[0]/b[0]:.2f}x | {a[1]/b[1]:.2f}x | {a[2]/b[2]:.2f}x |")
same = sum(x["answer"] == y["answer"] for x, y in zip(a[3], b[3]))
ptok = all(x["prompt_tokens"] == y["prompt_tokens"] for x, y in zip(a[3], b[3]))
print(f"\nprompt token counts equal on every prompt: {ptok}; identical greedy answers: {same}/{len(a[3])}")
PY
