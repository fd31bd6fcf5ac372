//! k-means and PCA through the public API, as the clustered batch samplers and the report
//! call them.

use polydense_index::{kmeans, pca_2d, IndexError, KMeans, KMeansConfig, Pca2d};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `per_blob` rows around each of `blobs` centres spread far apart in `dim` dimensions, with
/// unit Gaussian noise (Box–Muller); returns the rows and each row's blob.
fn blobs(blobs: usize, per_blob: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..blobs)
        .map(|_| (0..dim).map(|_| rng.random_range(-50.0..50.0)).collect())
        .collect();
    let mut data = Vec::new();
    let mut truth = Vec::new();
    for i in 0..blobs * per_blob {
        // Interleaved, so no blob sits in one contiguous block of rows.
        let b = i % blobs;
        for &c in &centres[b] {
            let (u1, u2): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
            let g = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            data.push(c + g);
        }
        truth.push(b);
    }
    (data, truth)
}

fn uniform(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn config(k: usize, seed: u64) -> KMeansConfig {
    KMeansConfig {
        k,
        seed,
        ..Default::default()
    }
}

fn assert_same_fit(a: &KMeans, b: &KMeans) {
    assert_eq!(a.centroids, b.centroids);
    assert_eq!(a.assignments, b.assignments);
    assert_eq!(a.inertia, b.inertia);
    assert_eq!(a.iterations, b.iterations);
    assert_eq!(a.history, b.history);
}

#[test]
fn recovers_well_separated_gaussian_blobs() {
    let (k, dim) = (8, 16);
    let (data, truth) = blobs(k, 150, dim, 1);
    for seed in 0..4 {
        let fit = kmeans(&data, dim, &config(k, seed)).unwrap();
        // Every blob maps to one cluster, and no two blobs share one.
        let mut cluster_of = vec![None; k];
        for (&b, &c) in truth.iter().zip(&fit.assignments) {
            match cluster_of[b] {
                None => cluster_of[b] = Some(c),
                Some(prev) => assert_eq!(prev, c, "seed {seed}: blob {b} split"),
            }
        }
        let mut used: Vec<u32> = cluster_of.iter().map(|c| c.unwrap()).collect();
        used.sort();
        used.dedup();
        assert_eq!(used.len(), k, "seed {seed}: two blobs merged");
        assert_eq!(fit.sizes(), vec![150; k]);
        // Unit noise in 16 dimensions: about 16 per row.
        let per_row = fit.inertia / truth.len() as f64;
        assert!((12.0..20.0).contains(&per_row), "seed {seed}: {per_row}");
    }
}

#[test]
fn inertia_never_increases_over_iterations() {
    let dim = 12;
    let data = uniform(3000, dim, 2);
    let cfg = KMeansConfig {
        k: 40,
        max_iters: 30,
        tol: 0.0,
        seed: 3,
        spherical: false,
    };
    let fit = kmeans(&data, dim, &cfg).unwrap();
    assert_eq!(fit.iterations, 30);
    assert_eq!(fit.history.len(), 31);
    for (t, w) in fit.history.windows(2).enumerate() {
        assert!(
            w[1] <= w[0] * (1.0 + 1e-6),
            "iteration {t}: {} -> {}",
            w[0],
            w[1]
        );
    }
    assert!(fit.history[30] < fit.history[0]);
    assert_eq!(fit.inertia, fit.history[30]);
}

#[test]
fn early_stop_follows_the_tolerance() {
    let dim = 8;
    let data = uniform(2000, dim, 4);
    let loose = kmeans(
        &data,
        dim,
        &KMeansConfig {
            tol: 0.05,
            max_iters: 100,
            ..config(10, 1)
        },
    )
    .unwrap();
    let strict = kmeans(
        &data,
        dim,
        &KMeansConfig {
            tol: 0.0,
            max_iters: 100,
            ..config(10, 1)
        },
    )
    .unwrap();
    assert!(loose.iterations < strict.iterations);
    let h = &loose.history;
    let last = h.len() - 1;
    assert!(h[last - 1] - h[last] < 0.05 * h[last - 1]);
    assert!(strict.inertia <= loose.inertia);
}

#[test]
fn same_seed_same_result_and_seeds_matter() {
    let dim = 10;
    let data = uniform(2000, dim, 5);
    let a = kmeans(&data, dim, &config(16, 7)).unwrap();
    let b = kmeans(&data, dim, &config(16, 7)).unwrap();
    assert_same_fit(&a, &b);
    let differs =
        (8..12).any(|s| kmeans(&data, dim, &config(16, s)).unwrap().centroids != a.centroids);
    assert!(differs);
}

#[test]
fn result_does_not_depend_on_the_thread_count() {
    let dim = 20;
    let data = uniform(5000, dim, 6);
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| kmeans(&data, dim, &config(32, 9)).unwrap())
    };
    let one = run(1);
    assert_same_fit(&one, &run(3));
}

#[test]
fn assign_agrees_with_the_fitted_assignments() {
    let dim = 32;
    let data = uniform(2500, dim, 8);
    let fit = kmeans(&data, dim, &config(20, 2)).unwrap();
    assert_eq!(fit.assign(&data), fit.assignments);
    // A subset lands where it did in the whole.
    assert_eq!(
        fit.assign(&data[dim * 100..dim * 400]),
        &fit.assignments[100..400]
    );
    assert_eq!(fit.sizes().iter().sum::<usize>(), 2500);
    assert_eq!(fit.k(), 20);
}

#[test]
fn spherical_centroids_are_unit_length() {
    let dim = 16;
    let data = uniform(1000, dim, 9);
    let fit = kmeans(
        &data,
        dim,
        &KMeansConfig {
            spherical: true,
            ..config(8, 1)
        },
    )
    .unwrap();
    for c in fit.centroids.chunks(dim) {
        let norm: f32 = c.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
}

#[test]
fn k_equal_to_n_puts_every_row_in_its_own_cluster() {
    let dim = 5;
    let data = uniform(30, dim, 10);
    let fit = kmeans(&data, dim, &config(30, 0)).unwrap();
    assert_eq!(fit.inertia, 0.0);
    assert_eq!(fit.sizes(), vec![1; 30]);
}

#[test]
fn duplicated_rows_leave_no_nan_and_no_row_unassigned() {
    // Three distinct points, each repeated: k = 5 cannot give five non-empty clusters, so
    // the empty-cluster re-seeding runs every iteration and must stay finite.
    let dim = 3;
    let points = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 5.0, 0.0]];
    let data: Vec<f32> = (0..12).flat_map(|i| points[i % 3]).collect();
    let fit = kmeans(
        &data,
        dim,
        &KMeansConfig {
            tol: 0.0,
            ..config(5, 3)
        },
    )
    .unwrap();
    assert_eq!(fit.inertia, 0.0);
    assert!(fit.centroids.iter().all(|v| v.is_finite()));
    let sizes = fit.sizes();
    assert_eq!(sizes.iter().sum::<usize>(), 12);
    assert_eq!(sizes.iter().filter(|&&s| s > 0).count(), 3);
}

#[test]
fn an_outlier_gets_its_own_cluster() {
    // With k = 3 on two tight groups and one far row, the far row must end alone.
    let dim = 2;
    let mut data = Vec::new();
    for i in 0..50 {
        let d = i as f32 * 1e-3;
        data.extend([d, 0.0, 10.0 + d, 0.0]);
    }
    data.extend([1000.0, 1000.0]);
    let fit = kmeans(&data, dim, &config(3, 0)).unwrap();
    let outlier = fit.assignments[100];
    assert_eq!(fit.assignments.iter().filter(|&&a| a == outlier).count(), 1);
}

#[test]
fn bad_input_gets_clear_errors() {
    let data = uniform(10, 4, 11);
    match kmeans(&data, 4, &config(11, 0)) {
        Err(e @ IndexError::TooManyClusters { k: 11, rows: 10 }) => {
            assert!(e.to_string().contains("k = 11"), "{e}");
        }
        other => panic!("expected TooManyClusters, got {other:?}"),
    }
    let msg = |r: Result<KMeans, IndexError>| r.unwrap_err().to_string();
    assert!(msg(kmeans(&[], 4, &config(1, 0))).contains("no rows"));
    assert!(msg(kmeans(&data, 0, &config(1, 0))).contains("dim"));
    assert!(msg(kmeans(&data[..7], 4, &config(1, 0))).contains("dimension 4"));
    assert!(msg(kmeans(&data, 4, &config(0, 0))).contains("k must be"));
    let mut nan = data.clone();
    nan[4 * 3 + 2] = f32::NAN;
    assert!(msg(kmeans(&nan, 4, &config(2, 0))).contains("row 3"));
    let bad_tol = KMeansConfig {
        tol: -1.0,
        ..config(2, 0)
    };
    assert!(msg(kmeans(&data, 4, &bad_tol)).contains("tol"));
}

#[test]
fn config_reads_from_json_with_defaults_for_missing_fields() {
    let cfg: KMeansConfig = serde_json::from_str(r#"{"k": 64, "spherical": true}"#).unwrap();
    assert_eq!(
        cfg,
        KMeansConfig {
            k: 64,
            spherical: true,
            ..Default::default()
        }
    );
    assert_eq!(cfg.max_iters, 20);
    assert_eq!(cfg.tol, 1e-4);
}

#[test]
fn pca_of_a_plane_in_ten_dimensions_explains_all_variance() {
    let (n, dim) = (1000, 10);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let basis: Vec<f32> = (0..2 * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let (a, b): (f32, f32) = (rng.random_range(-4.0..4.0), rng.random_range(-1.0..1.0));
        data.extend((0..dim).map(|i| 3.0 + a * basis[i] + b * basis[dim + i]));
    }
    let pca = Pca2d::fit(&data, dim).unwrap();
    assert!(pca.explained_variance_ratio() > 0.999_999);
    assert!(pca.variances[0] >= pca.variances[1]);
    let points = pca_2d(&data, dim).unwrap();
    assert_eq!(points.len(), n);
    // The plane is kept: projected spread equals the spread of the rows.
    let spread: f64 = points
        .iter()
        .map(|p| (p[0] as f64).powi(2) + (p[1] as f64).powi(2))
        .sum::<f64>()
        / n as f64;
    assert!((spread - pca.total_variance).abs() < 1e-4 * pca.total_variance);
}

#[test]
fn k_of_one_is_the_mean_of_all_rows() {
    let dim = 3;
    let data = uniform(500, dim, 13);
    let fit = kmeans(
        &data,
        dim,
        &KMeansConfig {
            tol: 0.0,
            ..config(1, 0)
        },
    )
    .unwrap();
    for (c, col) in fit.centroids.iter().zip(0..dim) {
        let mean: f64 = data.chunks(dim).map(|r| r[col] as f64).sum::<f64>() / 500.0;
        assert!(
            (*c as f64 - mean).abs() < 1e-6,
            "column {col}: {c} vs {mean}"
        );
    }
    assert!(fit.assignments.iter().all(|&a| a == 0));
    assert_eq!(fit.iterations, 20);
}
