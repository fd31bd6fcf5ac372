#!/usr/bin/env bash
# The OpenAI-compatible backend against a real server: llama.cpp's, as llama-cpp-python
# (built from PyPI by scripts/llamacpp-env) serves the SmolLM2 GGUF on 127.0.0.1, and the
# in-process backend on the same prompts. Records everything it runs and prints to
# bench/llm_llamacpp_integration.log:
#   1. `polydense llm check` against the server (models, one request, latency);
#   2. the same prompts through the server and in process (greedy), side by side;
#   3. a 2-query mining run with the LLM judge on the server, killed with the server midway
#      (the run stops with one line, nothing finished is lost), then resumed after a restart;
#   4. the same run again: every answer from the cache.
# Usage: scripts/llamacpp-integration.sh     (~10 min on 2 cores after the llama.cpp build)
# Env: POLYDENSE (binary; default: build release), PORT (default 8765), THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8765}
THREADS=${THREADS:-2}
LOG=bench/llm_llamacpp_integration.log
WORK=${WORK:-runs/llamacpp-integration}
MODEL=${POLYDENSE_HOME:-$HOME/.cache/polydense}/models/smollm2/model.gguf
URL=http://127.0.0.1:$PORT/v1
[ -f "$MODEL" ] || { echo "missing $MODEL: run ./scripts/setup --assets" >&2; exit 1; }
if [ -z "${POLYDENSE:-}" ]; then
  cargo build --release -p polydense-cli
  POLYDENSE=${CARGO_TARGET_DIR:-target}/release/polydense
fi
PY=$(scripts/llamacpp-env | tail -n1)
rm -rf "$WORK"; mkdir -p "$WORK"
exec > >(tee "$LOG") 2>&1
echo "# $(date -u +%F) llama-cpp-python $("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)'), $(uname -m), $THREADS threads"

server_pid=""
start_server() {
  "$PY" -m llama_cpp.server --model "$MODEL" --host 127.0.0.1 --port "$PORT" \
    --n_threads "$THREADS" --n_ctx 4096 --model_alias smollm2 > "$WORK/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 120); do
    curl -sf "$URL/models" > /dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "server did not come up; see $WORK/server.log"; exit 1
}
stop_server() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; server_pid=""; }
trap stop_server EXIT
# Shows each command (on stderr, so a command's JSON output stays clean) and runs it.
run() { echo "\$ polydense ${*:2}" >&2; "$@"; }

start_server
# llama-cpp-python's server takes the schema as {"type":"json_object","schema":…}.
OPENAI=(--backend openai --url "$URL" --model smollm2 --response-format json_object)
echo "## 1. llm check"
run "$POLYDENSE" llm check "${OPENAI[@]}"

echo; echo "## 2. the same prompts, server and in process"
head -n 4 bench/llm_prompts.txt > "$WORK/prompts.txt"
run "$POLYDENSE" llm ask "${OPENAI[@]}" --prompt-file "$WORK/prompts.txt" --max-tokens 48 --json | tee "$WORK/server.jsonl"
run "$POLYDENSE" llm ask --threads "$THREADS" --prompt-file "$WORK/prompts.txt" --max-tokens 48 --json | tee "$WORK/inprocess.jsonl"
python3 - "$WORK/server.jsonl" "$WORK/inprocess.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
same = sum(x["answer"] == y["answer"] for x, y in zip(a, b))
print(f"identical greedy answers: {same}/{len(a)} (llama.cpp multiplies the file's Q4_1 weights; "
      "polydense re-encodes them as Q8_0, so small logit differences can flip a token)")
PY

echo; echo "## 3. mining on the server; the server dies midway, then comes back"
[ -d data/xquad-r/paragraph/en ] || "$POLYDENSE" data prepare xquad-r --task paragraph --out data/xquad-r/paragraph
cfg=$WORK/mine.toml
python3 - configs/mine-llm.toml "$cfg" "$URL" "$WORK" <<'PY'
import re, sys
src, dst, url, work = sys.argv[1:5]
t = open(src).read()
t = re.sub(r'output = ".*"', f'output = "{work}/mined.jsonl"', t, count=1)
t = re.sub(r'^\[llm\]\n.*?\n\n', f'[llm]\nbackend = "openai"\nmodel = "smollm2"\nurl = "{url}"\nresponse_format = "json_object"\nconcurrency = 2\nretries = 2\nbackoff_ms = 200\ncache = "{work}/cache.jsonl"\n\n', t, flags=re.S | re.M)
t = re.sub(r'^\[\[generator\]\]\n.*?\n\n', '', t, flags=re.S | re.M)
t = re.sub(r'^\[\[filter\]\]\nkind = "rag_select".*', '', t, flags=re.S | re.M)
t = t.replace("max_queries = 4", "max_queries = 2").replace("checkpoint_every = 2", "checkpoint_every = 1")
open(dst, "w").write(t)
PY
( sleep 25; echo "[killing the server]"; stop_server ) &
killer=$!
set +e
run "$POLYDENSE" mine --config "$cfg"; echo "exit status: $?"
set -e
wait "$killer" || true
echo "answers kept in the cache: $(wc -l < "$WORK/cache.jsonl")"
ls "$WORK"
start_server
run "$POLYDENSE" mine --config "$cfg"

echo; echo "## 4. the same run again: from the cache"
start=$(date +%s.%N)
run "$POLYDENSE" mine --config "$cfg"
echo "rerun wall time: $(echo "$(date +%s.%N) - $start" | bc) s"
