#!/usr/bin/env python3
"""Reference embeddings of all-MiniLM-L6-v2 from sentence-transformers (PyTorch), for the
parity test in crates/polydense-model/tests/minilm.rs, and a check that sentence-transformers
loads a directory saved by polydense.

Writes tests/fixtures/minilm/reference.json: the sentences, sentence-transformers' token ids
(after truncation to max_seq_length) and its normalised embeddings.

Then runs the `resave` example (polydense loads the model, sets query/passage prompts, saves
it, and encodes the sentences as queries with the saved copy), loads the saved directory with
sentence-transformers, and prints the minimum cosine between the two, and whether the prompts
and pooling came through.

Needs: pip install torch sentence-transformers. Runs offline (HF_HUB_OFFLINE=1).
Usage: scripts/make_minilm_fixture.py [MODEL_DIR]
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("POLYDENSE_HOME", Path.home() / ".cache" / "polydense"))
MODEL = Path(sys.argv[1]) if len(sys.argv) > 1 else HOME / "models" / "minilm-l6"
OUT = ROOT / "tests" / "fixtures" / "minilm" / "reference.json"

LONG_BASE = (
    "The river rises in the northern hills, where snow melts slowly through the spring, and it "
    "runs south for three hundred kilometres past farms, small towns and two large dams before "
    "it reaches the sea. Engineers built the first dam in 1952 to control the floods that had "
    "destroyed harvests for generations, and the second one followed twenty years later to "
    "supply electricity to the growing cities on the coast. "
)

SENTENCES = [
    # very short
    "Hi",
    "?",
    "Paris",
    "a b",
    # ordinary English
    "The cat sits on the mat.",
    "How many people live in Berlin?",
    "Berlin has a population of about 3.7 million inhabitants.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The Denver Broncos defeated the Carolina Panthers 24-10 to win Super Bowl 50.",
    "What's the boiling point of water at sea level, in degrees Fahrenheit?",
    # multilingual (the model is English-only, but it must still match PyTorch token for token)
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "¿Dónde está la biblioteca más cercana?",
    "Москва — столица России.",
    "东京是日本的首都。",
    "القاهرة هي عاصمة مصر.",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    # long: between 128 and 256 tokens, and past 256 (truncated by max_seq_length)
    LONG_BASE * 2,
    LONG_BASE * 4,
    (LONG_BASE + "Ünïcödé àccents, numbers like 3.14159 and URLs like https://example.org/x?y=1 ") * 5,
]


def main():
    model = SentenceTransformer(str(MODEL), device="cpu")
    tok = model.tokenizer
    max_len = model.max_seq_length
    ids = [
        tok(s, truncation=True, max_length=max_len)["input_ids"] for s in SENTENCES
    ]
    emb = model.encode(SENTENCES, batch_size=8, convert_to_numpy=True, normalize_embeddings=False)
    lengths = [len(i) for i in ids]
    print("max_seq_length", max_len, "token lengths", lengths)
    assert any(n == max_len for n in lengths) and any(128 < n < max_len for n in lengths)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "made_by": "scripts/make_minilm_fixture.py",
        "max_seq_length": max_len,
        "sentences": SENTENCES,
        "token_ids": ids,
        "embeddings": [[float(f"{x:.7g}") for x in row] for row in emb.tolist()],
    }
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(fixture, ensure_ascii=False, separators=(",", ":")) + "\n")
    tmp.replace(OUT)
    print("wrote", OUT, OUT.stat().st_size, "bytes")

    # sentence-transformers loads what polydense saves.
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        texts = td / "texts.json"
        texts.write_text(json.dumps(SENTENCES))
        saved, ours = td / "saved", td / "ours.json"
        subprocess.run(
            ["cargo", "run", "-q", "--release", "-p", "polydense-model", "--example", "resave", "--",
             str(MODEL), str(saved), str(texts), str(ours)],
            cwd=ROOT, check=True,
        )
        st = SentenceTransformer(str(saved), device="cpu")
        print("saved dir:", sorted(p.name for p in saved.iterdir()))
        print("sentence-transformers sees prompts", st.prompts, "modules", [type(m).__name__ for m in st])
        theirs = st.encode(SENTENCES, prompt_name="query", convert_to_numpy=True)
        rust = np.array(json.loads(ours.read_text()), dtype=np.float32)
        cos = (theirs * rust).sum(1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(rust, axis=1)
        same = st.encode(SENTENCES, convert_to_numpy=True)
        cos_orig = (same * emb).sum(1) / np.linalg.norm(same, axis=1) / np.linalg.norm(emb, axis=1)
        print(f"saved-by-polydense in sentence-transformers vs original: min cosine {cos_orig.min():.7f}")
        print(f"query prompts, sentence-transformers vs polydense on the saved dir: min cosine {cos.min():.7f}")
        assert st.prompts.get("query") == "query: " and cos.min() > 0.9999 and cos_orig.min() > 0.99999


if __name__ == "__main__":
    main()
