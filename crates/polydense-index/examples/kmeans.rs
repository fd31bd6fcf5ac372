//! Times k-means on an embedding store or a raw f32 matrix and writes the rows it clustered
//! and its centroids as raw little-endian files, so `bench/kmeans_vs_faiss.sh` can run FAISS
//! on the very same vectors and score both sets of centroids with the same code.
//!
//! Usage: kmeans INPUT DIM K ITERS SEED REPEATS OUT_DIR
//!   INPUT is a store directory (DIM is then read from it; pass 0) or a raw f32 file.
//!   Runs seeds SEED..SEED+REPEATS (one seed says little about quality) and writes
//!   OUT_DIR/data.f32 (store input only) and OUT_DIR/centroids-SEED.f32 for each, then prints
//!   one line with the best time, the mean inertia and the iteration count.

use polydense_index::{kmeans, EmbeddingStore, KMeansConfig};
use std::io::Write;
use std::path::{Path, PathBuf};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn write_f32(path: &Path, values: &[f32]) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for v in values {
        w.write_all(&v.to_le_bytes()).unwrap();
    }
    w.flush().unwrap();
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: kmeans INPUT DIM K ITERS SEED REPEATS OUT_DIR";
    assert_eq!(a.len(), 8, "{usage}");
    let num = |i: usize| a[i].parse::<u64>().expect(usage);
    let input = PathBuf::from(&a[1]);
    let (k, iters, seed, repeats) = (num(3) as usize, num(4) as usize, num(5), num(6).max(1));
    let out = PathBuf::from(&a[7]);
    std::fs::create_dir_all(&out).unwrap();

    let (data, dim) = if input.is_dir() {
        let store = EmbeddingStore::open(&input).unwrap();
        let data = store.embeddings().to_vec();
        write_f32(&out.join("data.f32"), &data);
        (data, store.dim())
    } else {
        let bytes = std::fs::read(&input).unwrap();
        let data: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (data, num(2) as usize)
    };
    let config = KMeansConfig {
        k,
        max_iters: iters,
        // Zero runs every iteration, as FAISS does.
        tol: 0.0,
        seed,
        spherical: false,
    };
    let (mut best, mut inertia, mut iterations) = (f64::INFINITY, 0.0, 0);
    for s in seed..seed + repeats {
        let fit = kmeans(
            &data,
            dim,
            &KMeansConfig {
                seed: s,
                ..config.clone()
            },
        )
        .unwrap();
        write_f32(&out.join(format!("centroids-{s}.f32")), &fit.centroids);
        best = best.min(fit.seconds);
        inertia += fit.inertia / repeats as f64;
        iterations = fit.iterations;
    }
    println!(
        "polydense kmeans: n={} dim={dim} k={k} iterations={iterations} threads={}: {best:.3}s, inertia {inertia:.6e}",
        data.len() / dim,
        rayon::current_num_threads(),
    );
}
