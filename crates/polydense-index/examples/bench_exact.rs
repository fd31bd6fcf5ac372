//! Times exact top-k search on seeded random unit vectors and writes them (and the hits) as
//! raw little-endian files, so `bench/search_exact.sh` can run FAISS on the very same data.
//!
//! Usage: bench_exact N_CORPUS N_QUERIES DIM K OUT_DIR

use polydense_index::ExactSearch;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn unit_rows(n: usize, dim: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n * dim)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    for row in v.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn write_raw(path: &std::path::Path, bytes: impl Iterator<Item = [u8; 4]>) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for b in bytes {
        w.write_all(&b).unwrap();
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let num = |i: usize| {
        a[i].parse::<usize>()
            .expect("N_CORPUS N_QUERIES DIM K OUT_DIR")
    };
    let (n, m, dim, k) = (num(1), num(2), num(3), num(4));
    let out = std::path::PathBuf::from(&a[5]);
    std::fs::create_dir_all(&out).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let corpus = unit_rows(n, dim, &mut rng);
    let queries = unit_rows(m, dim, &mut rng);
    write_raw(
        &out.join("corpus.f32"),
        corpus.iter().map(|x| x.to_le_bytes()),
    );
    write_raw(
        &out.join("queries.f32"),
        queries.iter().map(|x| x.to_le_bytes()),
    );

    let search = ExactSearch::new(k);
    let mut best = f64::INFINITY;
    let mut hits = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        hits = search.search(&queries, &corpus, dim, None).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    write_raw(
        &out.join("hits.i32"),
        hits.iter().flatten().map(|h| (h.row as i32).to_le_bytes()),
    );
    // The alternative kernel: candle's CPU matmul on the same chunks (scores only, no top-k),
    // which must first copy each chunk of the corpus into a tensor.
    let dev = candle_core::Device::Cpu;
    let q = candle_core::Tensor::from_slice(&queries, (m, dim), &dev).unwrap();
    let mut candle_best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        for c in corpus.chunks(4096 * dim) {
            let c = candle_core::Tensor::from_slice(c, (c.len() / dim, dim), &dev).unwrap();
            let s = q.matmul(&c.t().unwrap()).unwrap();
            std::hint::black_box(s);
        }
        candle_best = candle_best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "candle matmul, scores only (no top-k): {candle_best:.3}s, {:.1} queries/s",
        m as f64 / candle_best
    );
    println!(
        "polydense exact: {n} x {dim} corpus, {m} queries, k={k}, {} threads: {:.3}s, {:.1} queries/s",
        rayon::current_num_threads(),
        best,
        m as f64 / best
    );
}
