#!/usr/bin/env python3
"""Seconds per training step of PyTorch on all-MiniLM-L6-v2, the peer of
crates/polydense-model/benches/train_step.rs: 32 XQuAD-R English questions and their
contexts (seq <= 128), mean pooling + normalisation, InfoNCE (tau 0.05), AdamW. 2 threads.
With TRAIN_FILE (Tevatron jsonl), each step takes the file's next 32 examples instead."""
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

home = Path(os.environ.get("POLYDENSE_HOME", Path.home() / ".cache" / "polydense"))
data = Path(os.environ.get("POLYDENSE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
torch.set_num_threads(2)
steps = int(os.environ.get("STEPS", "3"))
train_file = os.environ.get("TRAIN_FILE")
if train_file:
    # The whole trainer's peer: the file's next 32 examples each step, as `polydense train
    # --sampler sequential` takes them, each batch padded to its own longest text.
    rows = [json.loads(line) for line in open(train_file)]
    batches = [([r["query"] for r in rows[i:i + 32]],
                [r["positive_passages"][0]["text"] for r in rows[i:i + 32]])
               for i in range(0, 32 * (steps + 1), 32)]
else:
    qs, ps = [], []
    for article in json.loads((data / "xquad-r" / "en.json").read_text())["data"]:
        for p in article["paragraphs"]:
            if len(qs) < 32:
                qs.append(p["qas"][0]["question"]); ps.append(p["context"])
    batches = [(qs, ps)] * (steps + 1)
model = SentenceTransformer(str(home / "models" / "minilm-l6"), device="cpu")
model.max_seq_length = 128
model.train()
for m in model.modules():  # polydense trains without dropout
    if isinstance(m, torch.nn.Dropout):
        m.p = 0.0
tokenized = [(model.tokenize(qs), model.tokenize(ps)) for qs, ps in batches]
opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
times = []
for i, (qf, pf) in enumerate(tokenized):
    t = time.perf_counter()
    q = model(dict(qf))["sentence_embedding"]
    p = model(dict(pf))["sentence_embedding"]
    loss = F.cross_entropy(q @ p.T / 0.05, torch.arange(len(q)))
    opt.zero_grad(); loss.backward(); opt.step()
    if i > 0:
        times.append(time.perf_counter() - t)
print(json.dumps({"system": "pytorch", "seq": max(int(p["input_ids"].shape[1]) for _, p in tokenized),
                  "mean_step_s": round(sum(times) / len(times), 3), "best_step_s": round(min(times), 3)}))
