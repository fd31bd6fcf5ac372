#!/usr/bin/env bash
# Seconds per training step, polydense vs PyTorch: all-MiniLM-L6-v2, 32 questions + 32
# contexts (seq <= 128), InfoNCE, AdamW, 2 threads. Prints each, the ratio, and peak RSS.
# PYTHON=/path/to/python with torch + sentence-transformers (default python3); STEPS=n (3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export STEPS=${STEPS:-3} RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/polydense/target}
bin=$(cargo bench -p polydense-model --bench train_step --no-run --message-format=json 2>/dev/null \
  | "$PYTHON" -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="train_step" and m.get("executable"): print(m["executable"])' | tail -1)
run() {
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" 2>"$log" | tail -1
  grep "Maximum resident set size" "$log" | awk '{printf "peak_rss_mb %.0f\n", $6/1024}'
  rm -f "$log"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
ours=$(run "$bin"); theirs=$(run "$PYTHON" bench/train_step_pytorch.py)
echo "$ours"; echo "$theirs"
"$PYTHON" - "$ours" "$theirs" <<'PY'
import json, sys
def parse(block):
    lines = block.strip().splitlines()
    d = json.loads(lines[0]); d["peak_rss_mb"] = float(lines[1].split()[1]); return d
a, b = parse(sys.argv[1]), parse(sys.argv[2])
print(f"polydense {a['mean_step_s']:7.2f} s/step   peak RSS {a['peak_rss_mb']:6.0f} MB")
print(f"PyTorch   {b['mean_step_s']:7.2f} s/step   peak RSS {b['peak_rss_mb']:6.0f} MB")
print(f"speed ratio polydense / PyTorch: {b['mean_step_s'] / a['mean_step_s']:.2f}x")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
