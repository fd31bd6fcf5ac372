#!/usr/bin/env python3
"""One training example per XQuAD-R English paragraph (its first question and the
paragraph), shuffled once with a fixed seed, as Tevatron jsonl: the step benches' batches.
Usage: xquad_en_train.py OUT.jsonl"""
import json
import os
import random
import sys
from pathlib import Path

data = Path(os.environ.get("POLYDENSE_DATA", Path("..") / "shared" / "data"))
rows = []
for a in json.loads((data / "xquad-r" / "en.json").read_text())["data"]:
    for i, p in enumerate(a["paragraphs"]):
        rows.append({"query_id": p["qas"][0]["id"], "query": p["qas"][0]["question"],
                     "positive_passages": [{"docid": f"{a['title']}-{i}", "text": p["context"]}]})
random.Random(0).shuffle(rows)
with open(sys.argv[1], "w") as out:
    out.writelines(json.dumps(r) + "\n" for r in rows)
