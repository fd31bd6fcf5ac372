#!/usr/bin/env bash
# Encode throughput, polydense vs sentence-transformers (PyTorch), on the same texts:
# all-MiniLM-L6-v2, XQuAD-R English contexts (240), seq <= 128, batch 32, 2 threads.
# Prints passages/s of each, the ratio, and peak RSS (from /usr/bin/time -v).
# Needs a Python with torch + sentence-transformers: PYTHON=/path/to/python (default python3).
# REPS=n takes the best of n timed runs per system (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export REPS=${REPS:-3} RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} THREADS=2
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/polydense/target}

bin=$(cargo bench -p polydense-model --bench encode --no-run --message-format=json 2>/dev/null \
  | "$PYTHON" -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="encode" and m.get("executable"): print(m["executable"])' | tail -1)

run() { # label, command...
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" 2>"$log" | tail -1
  grep "Maximum resident set size" "$log" | awk '{printf "peak_rss_mb %.0f\n", $6/1024}'
  rm -f "$log"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
ours=$(run "$bin"); theirs=$(run "$PYTHON" bench/encode_pytorch.py)
echo "$ours"; echo "$theirs"
"$PYTHON" - "$ours" "$theirs" <<'PY'
import json, sys
def parse(block):
    lines = block.strip().splitlines()
    d = json.loads(lines[0]); d["peak_rss_mb"] = float(lines[1].split()[1]); return d
a, b = parse(sys.argv[1]), parse(sys.argv[2])
print(f"polydense            {a['passages_per_s']:8.2f} passages/s   peak RSS {a['peak_rss_mb']:6.0f} MB")
print(f"sentence-transformers {b['passages_per_s']:7.2f} passages/s   peak RSS {b['peak_rss_mb']:6.0f} MB")
print(f"ratio polydense / PyTorch: {a['passages_per_s'] / b['passages_per_s']:.2f}x")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
