"""Where segmentation matters: BM25 (bm25s, Lucene formula, k1=0.9 b=0.4) on one XQuAD-R
paragraph-task language with tokenisations that ignore word boundaries in unspaced scripts.
Writes one TREC run per tokenisation into OUT; bench/bm25_segmentation.sh scores them with
`polydense eval` next to polydense's own (ICU dictionary) run.

Usage: python bench/bm25_segmentation.py BEIR_LANG_DIR OUT"""
import json
import os
import re
import sys

import bm25s

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
docs = [json.loads(l) for l in open(f"{src}/corpus.jsonl", encoding="utf-8")]
queries = [json.loads(l) for l in open(f"{src}/queries.jsonl", encoding="utf-8")]
WORD = re.compile(r"\w+")

tokenisers = {
    # Spaces only: a Thai or Chinese sentence is one token.
    "whitespace": lambda t: t.lower().split(),
    # scikit-learn/bm25s style runs of word characters (splits Thai at combining vowel marks).
    "regex-words": lambda t: WORD.findall(t.lower()),
    # Every non-space character a token: Chinese character unigrams.
    "characters": lambda t: [c for c in t.lower() if not c.isspace()],
}
for name, tok in tokenisers.items():
    corpus = [tok((d.get("title", "") + " " + d["text"]).strip()) for d in docs]
    r = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    r.index(corpus, show_progress=False)
    with open(f"{out}/{name}.trec", "w", encoding="utf-8") as f:
        for q in queries:
            qt = tok(q["text"])
            # bm25s cannot score an empty query, nor one whose tokens are all unknown.
            qt = [t for t in qt if t in r.vocab_dict]
            if not qt:
                continue
            ids, scores = r.retrieve([qt], k=min(100, len(docs)), show_progress=False)
            for rank, (i, s) in enumerate(zip(ids[0], scores[0]), 1):
                if s > 0:
                    f.write(f"{q['_id']} Q0 {docs[i]['_id']} {rank} {s:.6f} {name}\n")
