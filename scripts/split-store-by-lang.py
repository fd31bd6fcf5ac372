#!/usr/bin/env python3
"""Splits a polydense embedding store into one store per row language.

XQuAD-R's per-language paragraph corpora are exactly the rows of the pooled corpus with that
`lang` (same ids, same texts), so their embeddings need not be computed twice: this writes
OUT/<lang>/{embeddings.safetensors,ids.jsonl} from the pooled store, for `polydense search`.

Usage: split-store-by-lang.py STORE_DIR OUT_DIR   (needs numpy)
"""
import json
import os
import sys

import numpy as np


def read_store(d):
    with open(os.path.join(d, "embeddings.safetensors"), "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        info = header["embeddings"]
        rows, dim = info["shape"]
        data = np.frombuffer(f.read(), dtype="<f4", count=rows * dim).reshape(rows, dim)
    ids = [json.loads(line) for line in open(os.path.join(d, "ids.jsonl"))]
    return header.get("__metadata__", {}), data, ids


def write_store(d, meta, data, ids):
    os.makedirs(d, exist_ok=True)
    rows, dim = data.shape
    header = {
        "__metadata__": meta,
        "embeddings": {"dtype": "F32", "shape": [rows, dim], "data_offsets": [0, rows * dim * 4]},
    }
    h = json.dumps(header).encode()
    h += b" " * ((-(8 + len(h))) % 64)  # data on a 64-byte boundary, as polydense writes it
    with open(os.path.join(d, "embeddings.safetensors"), "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + data.astype("<f4").tobytes())
    with open(os.path.join(d, "ids.jsonl"), "w") as f:
        for i in ids:
            f.write(json.dumps(i, ensure_ascii=False) + "\n")


def main():
    src, out = sys.argv[1:3]
    meta, data, ids = read_store(src)
    langs = sorted({i.get("lang") for i in ids if i.get("lang")})
    for lang in langs:
        keep = [k for k, i in enumerate(ids) if i.get("lang") == lang]
        m = dict(meta, subset=f"lang={lang}")
        write_store(os.path.join(out, lang), m, data[keep], [ids[k] for k in keep])
        print(f"{lang}: {len(keep)} rows")


if __name__ == "__main__":
    main()
