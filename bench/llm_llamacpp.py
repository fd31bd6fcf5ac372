#!/usr/bin/env python3
"""The llama.cpp side of bench/llm_inprocess_vs_llamacpp.sh: the same GGUF, prompts, chat
template, greedy decoding and thread count as `polydense llm ask --json`, through
llama-cpp-python's low-level API, timing the prompt (one eval of all its tokens) and the
generation (one eval per token) separately. Prints one JSON line per prompt, as polydense.

usage: llm_llamacpp.py MODEL PROMPTS SYSTEM MAX_TOKENS THREADS
"""
import json
import sys
import time

from llama_cpp import Llama


def main():
    model, prompts, system, max_tokens, threads = sys.argv[1:6]
    max_tokens, threads = int(max_tokens), int(threads)
    llm = Llama(model_path=model, n_ctx=4096, n_threads=threads, n_threads_batch=threads,
                n_batch=512, verbose=False, seed=13)
    eos = {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}
    for line in open(prompts, encoding="utf-8"):
        p = line.strip()
        if not p:
            continue
        # SmolLM2's chat template (tokenizer.chat_template in the file), as polydense renders it.
        text = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n"
        tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(tokens)
        t1 = time.perf_counter()
        out = []
        while len(out) < max_tokens:
            tok = llm.sample(top_k=1, temp=0.0)
            if tok in eos:
                break
            out.append(tok)
            if len(out) == max_tokens:
                break
            llm.eval([tok])
        t2 = time.perf_counter()
        print(json.dumps({
            "backend": "llama.cpp", "prompt": p,
            "answer": llm.detokenize(out).decode("utf-8", "replace"),
            "prompt_tokens": len(tokens), "completion_tokens": len(out),
            "prompt_ms": (t1 - t0) * 1e3, "generate_ms": (t2 - t1) * 1e3,
            "wall_ms": (t2 - t0) * 1e3,
        }), flush=True)


if __name__ == "__main__":
    main()
