#!/usr/bin/env python3
"""Writes tests/fixtures/mine/: a tiny BEIR directory whose cases exercise negative mining.

q1's positive d1 has a near-copy (d2: same words, other case and punctuation) that dedup by
text must drop, and a passage (d3) that BM25 scores above the positive, which the
false-negative filter must drop. q3 is judged only with grade 0, so it has no positive.
"""
import json
import os

root = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "mine")
os.makedirs(os.path.join(root, "qrels"), exist_ok=True)

corpus = [
    ("d1", "Paris is the capital of France."),
    ("d2", "paris IS the capital of  france"),
    ("d3", "The capital of France is Paris; Paris, capital of France, capital city of France."),
    ("d4", "Berlin is the capital of Germany."),
    ("d5", "Madrid is the capital of Spain."),
    ("d6", "France borders Spain and Germany."),
    ("d7", "The Seine flows through Paris."),
    ("d8", "Rome is the capital of Italy."),
    ("d9", "Germany has many rivers, the Rhine among them."),
    ("d10", "The Rhine flows through Germany and the Netherlands."),
    ("d11", "Rivers of Europe include the Danube and the Rhine."),
    ("d12", "Lisbon is the capital of Portugal."),
]
queries = [
    ("q1", "what is the capital of France"),
    ("q2", "which river flows through Germany"),
    ("q3", "capital of Italy"),
]
qrels = [("q1", "d1", 1), ("q2", "d10", 1), ("q3", "d8", 0)]

with open(os.path.join(root, "corpus.jsonl"), "w", encoding="utf-8") as f:
    for i, t in corpus:
        f.write(json.dumps({"_id": i, "title": "", "text": t, "lang": "en"}) + "\n")
with open(os.path.join(root, "queries.jsonl"), "w", encoding="utf-8") as f:
    for i, t in queries:
        f.write(json.dumps({"_id": i, "text": t, "lang": "en"}) + "\n")
with open(os.path.join(root, "qrels", "train.tsv"), "w", encoding="utf-8") as f:
    f.write("query-id\tcorpus-id\tscore\n")
    for q, d, g in qrels:
        f.write(f"{q}\t{d}\t{g}\n")
