//! k-means: seeded k-means++ initialisation followed by Lloyd iterations.
//!
//! Clustered batch samplers (ICT-P / ICT-Q, SIGIR'24) re-cluster the model's own embeddings
//! before every epoch, so the clustering must be fast on a CPU and free on a GPU. The
//! assignment step is a matrix product, `‖x‖² − 2·x·cᵀ + ‖c‖²`: one sgemm per block of rows
//! on the CPU (the `gemm` crate, the kernel behind candle's CPU matmul) or a candle matmul on
//! another device. Everything else is a linear pass over the rows. Three things keep the CPU
//! path well ahead of a plain Lloyd loop while computing the same clustering (up to rounding;
//! the seeding draws other rows than a naïve k-means++ would, from the same distribution):
//! - k-means++ refreshes its D² in one sgemm pass per 64 picks (`kmeans_pp`);
//! - Hamerly's bounds skip rows whose centroid provably stays the nearest (`assign_bounded`);
//! - centroid sums are kept across iterations and moved row by row (`ClusterSums`).
//!
//! Results depend only on the data and the config, not on the thread count: every parallel
//! pass works on blocks of a fixed number of rows (one single-threaded sgemm each) and adds
//! its partial sums in block order, and centroid sums run per cluster in row order.
//!
//! A hand-written Lloyd loop rather than a crate: linfa-clustering took 77 s where a matmul
//! loop took 0.48 s on 10k×384, k=64 (DESIGN.md), and no lean crate runs on candle devices.

use crate::error::{IndexError, Result};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::time::Instant;

/// Rows per block in the parallel passes. Fixed, not derived from the thread count, so that
/// sums reduce in the same order whatever the size of the pool.
const BLOCK_ROWS: usize = 256;

/// Most scores one tensor-device matmul produces at once (256 MiB of f32), so that a large
/// corpus times a large k never needs an n×k buffer on the GPU.
const MAX_DEVICE_SCORES: usize = 1 << 26;

/// Settings of a k-means run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct KMeansConfig {
    /// Number of clusters; at most the number of rows.
    pub k: usize,
    /// Most Lloyd iterations (centroid updates) to run.
    pub max_iters: usize,
    /// Stop early once an iteration lowers the inertia by less than this fraction of it;
    /// 0 runs all `max_iters`.
    pub tol: f64,
    /// Seed of the k-means++ initialisation (ChaCha8).
    pub seed: u64,
    /// L2-normalise the centroids after every update (cosine / spherical k-means), for
    /// embeddings compared by inner product.
    pub spherical: bool,
}

impl Default for KMeansConfig {
    fn default() -> Self {
        KMeansConfig {
            k: 8,
            max_iters: 20,
            tol: 1e-4,
            seed: 0,
            spherical: false,
        }
    }
}

impl KMeansConfig {
    /// Defaults with `k` clusters, the usual way a sampler builds one.
    pub fn with_k(k: usize) -> Self {
        KMeansConfig {
            k,
            ..Default::default()
        }
    }
}

/// A fitted clustering.
#[derive(Debug, Clone)]
pub struct KMeans {
    /// Width of the rows and of the centroids.
    pub dim: usize,
    /// `k × dim` centroids, row-major.
    pub centroids: Vec<f32>,
    /// The cluster of each input row, against the final centroids.
    pub assignments: Vec<u32>,
    /// Sum of squared L2 distances from each row to its assigned (final) centroid.
    pub inertia: f64,
    /// Lloyd iterations (centroid updates) run.
    pub iterations: usize,
    /// Wall-clock seconds of the whole fit, initialisation included.
    pub seconds: f64,
    /// Inertia after the initialisation and after each iteration (`iterations + 1` values),
    /// so callers can see convergence.
    pub history: Vec<f64>,
}

impl KMeans {
    /// Number of clusters.
    pub fn k(&self) -> usize {
        self.centroids.len() / self.dim
    }

    /// Rows in each cluster; ICT cuts clusters larger than the batch size into chunks.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.k()];
        for &a in &self.assignments {
            sizes[a as usize] += 1;
        }
        sizes
    }

    /// Nearest centroid of each row of `data` (row-major, width `dim`); rows assigned during
    /// the fit get the same answer here.
    ///
    /// # Panics
    /// When `data` is not a whole number of rows of width `dim`.
    pub fn assign(&self, data: &[f32]) -> Vec<u32> {
        assert!(
            data.len() % self.dim == 0,
            "{} values are not rows of dimension {}",
            data.len(),
            self.dim
        );
        let n = data.len() / self.dim;
        let mut assignments = vec![0u32; n];
        let mut d2 = vec![0f32; n];
        let mut lower = vec![0f32; n];
        let (dim, c) = (self.dim, &self.centroids);
        assign_cpu(data, dim, c, &mut assignments, &mut d2, &mut lower);
        assignments
    }
}

/// Fits k-means++ initialised Lloyd iterations on the CPU.
pub fn kmeans(data: &[f32], dim: usize, config: &KMeansConfig) -> Result<KMeans> {
    fit(data, dim, config, &mut Assigner::cpu())
}

/// The same on a candle device (CUDA under the `cuda` build); Device::Cpu must give the same
/// result as `kmeans`.
pub fn kmeans_on(
    data: &[f32],
    dim: usize,
    config: &KMeansConfig,
    device: &Device,
) -> Result<KMeans> {
    if device.is_cpu() {
        return kmeans(data, dim, config);
    }
    let mut assigner = Assigner::tensor(data, dim, device)?;
    fit(data, dim, config, &mut assigner)
}

/// Checks the input and returns the number of rows.
fn validate(data: &[f32], dim: usize, config: &KMeansConfig) -> Result<usize> {
    if dim == 0 {
        return Err(IndexError::InvalidArgument(
            "k-means: dim must be at least 1".into(),
        ));
    }
    if data.len() % dim != 0 {
        return Err(IndexError::InvalidArgument(format!(
            "k-means: {} values are not rows of dimension {dim}",
            data.len()
        )));
    }
    let n = data.len() / dim;
    if n == 0 {
        return Err(IndexError::InvalidArgument(
            "k-means: the data has no rows to cluster".into(),
        ));
    }
    if config.k == 0 {
        return Err(IndexError::InvalidArgument(
            "k-means: k must be at least 1".into(),
        ));
    }
    if config.k > n {
        return Err(IndexError::TooManyClusters {
            k: config.k,
            rows: n,
        });
    }
    if n > u32::MAX as usize {
        return Err(IndexError::InvalidArgument(format!(
            "k-means: {n} rows exceed the 2^32 rows one run supports"
        )));
    }
    if config.tol.is_nan() || config.tol < 0.0 {
        return Err(IndexError::InvalidArgument(format!(
            "k-means: tol must be a non-negative number, got {}",
            config.tol
        )));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(IndexError::InvalidArgument(format!(
            "k-means: row {} holds a non-finite value at column {}",
            i / dim,
            i % dim
        )));
    }
    Ok(n)
}

fn fit(data: &[f32], dim: usize, config: &KMeansConfig, assigner: &mut Assigner) -> Result<KMeans> {
    let start = Instant::now();
    let n = validate(data, dim, config)?;
    let k = config.k;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut centroids = kmeans_pp(data, dim, k, &mut rng);
    if config.spherical {
        normalise_rows(&mut centroids, dim);
    }
    let mut assignments = vec![0u32; n];
    let mut d2 = vec![0f32; n];
    let mut inertia = assigner.assign(data, dim, &centroids, &mut assignments, &mut d2)?;
    let mut history = vec![inertia];
    let mut iterations = 0;
    let mut sums = ClusterSums::new(data, dim, k, &assignments);
    let mut before = assignments.clone();
    while iterations < config.max_iters {
        let mut next = sums.centroids(data, &d2);
        if config.spherical {
            normalise_rows(&mut next, dim);
        }
        let old = std::mem::replace(&mut centroids, next);
        let prev = inertia;
        before.copy_from_slice(&assignments);
        inertia = assigner.reassign(data, dim, &old, &centroids, &mut assignments, &mut d2)?;
        sums.update(data, &before, &assignments);
        history.push(inertia);
        iterations += 1;
        if prev - inertia < config.tol * prev || inertia == 0.0 {
            break;
        }
    }
    if iterations > 0 && assigner.skips() {
        inertia = assigner.assign(data, dim, &centroids, &mut assignments, &mut d2)?;
        *history.last_mut().expect("one entry per iteration") = inertia;
    }
    Ok(KMeans {
        dim,
        centroids,
        assignments,
        inertia,
        iterations,
        seconds: start.elapsed().as_secs_f64(),
        history,
    })
}

/// Centres picked since the last full refresh of the distances, at most.
const MAX_PENDING: usize = 64;
/// Rejected candidates tolerated before the distances are refreshed.
const MAX_REJECTIONS: usize = 32;

/// k-means++ seeding (Arthur & Vassilvitskii, 2007): each new centre is a row drawn with
/// probability proportional to its squared distance D² to the nearest centre so far.
///
/// Done naïvely, every pick is a pass over all rows, and in high dimensions no triangle-
/// inequality test prunes it (all distances concentrate), so the seeding of 100k×384 with
/// k=256 cost as much as six Lloyd iterations. Instead, D² is refreshed only every
/// [`MAX_PENDING`] picks, in one sgemm pass against all the centres picked since. In between,
/// a candidate is drawn from the stale D² and accepted with probability `D²_now / D²_stale`
/// (its distances to the few new centres are computed on the spot). Rejection sampling makes
/// each accepted pick follow the exact k-means++ distribution; the distances are refreshed
/// early when too many candidates are rejected.
fn kmeans_pp(data: &[f32], dim: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = data.len() / dim;
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let mut centroids = Vec::with_capacity(k * dim);
    let mut chosen = vec![false; n];
    let first = rng.random_range(0..n);
    chosen[first] = true;
    centroids.extend_from_slice(row(first));
    let mut d2: Vec<f32> = vec![0.0; n];
    d2.par_chunks_mut(BLOCK_ROWS)
        .zip(data.par_chunks(BLOCK_ROWS * dim))
        .for_each(|(d, rows)| {
            for (di, r) in d.iter_mut().zip(rows.chunks_exact(dim)) {
                *di = sq_dist(r, row(first));
            }
        });
    d2[first] = 0.0;
    let mut block_sums = block_sums_of(&d2);
    let x_norms: Vec<f32> = data.par_chunks(dim).map(|r| dot(r, r)).collect();
    let mut pending: Vec<usize> = Vec::with_capacity(MAX_PENDING);
    let mut rejections = 0;
    while centroids.len() < k * dim {
        if pending.len() == MAX_PENDING || rejections == MAX_REJECTIONS {
            refresh_d2(data, dim, &x_norms, &pending, &mut d2);
            block_sums = block_sums_of(&d2);
            pending.clear();
            rejections = 0;
        }
        let pick = sample_d2(&d2, &block_sums, &chosen, rng);
        if !chosen[pick] && !pending.is_empty() {
            let stale = d2[pick];
            let now = pending
                .iter()
                .map(|&p| sq_dist(row(pick), row(p)))
                .fold(stale, f32::min);
            if rng.random::<f64>() * stale as f64 >= now as f64 {
                rejections += 1;
                continue;
            }
        }
        chosen[pick] = true;
        block_sums[pick / BLOCK_ROWS] -= d2[pick] as f64;
        d2[pick] = 0.0;
        centroids.extend_from_slice(row(pick));
        pending.push(pick);
    }
    centroids
}

/// Lowers each row's D² to its distance to the `pending` centres (rows of `data`): one
/// sgemm per block of rows, distances in the expanded form.
fn refresh_d2(data: &[f32], dim: usize, x_norms: &[f32], pending: &[usize], d2: &mut [f32]) {
    if pending.is_empty() {
        return;
    }
    let p = pending.len();
    let centres: Vec<f32> = pending
        .iter()
        .flat_map(|&i| data[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let c_norms: Vec<f32> = pending.iter().map(|&i| x_norms[i]).collect();
    d2.par_chunks_mut(BLOCK_ROWS)
        .zip(data.par_chunks(BLOCK_ROWS * dim))
        .zip(x_norms.par_chunks(BLOCK_ROWS))
        .for_each_init(Vec::new, |scores, ((d, rows), xn)| {
            let m = d.len();
            scores.resize(m * p, 0.0);
            sgemm_nt(rows, &centres, scores, m, p, dim);
            for ((di, &x), s) in d.iter_mut().zip(xn).zip(scores.chunks_exact(p)) {
                for (&cn, &xc) in c_norms.iter().zip(s) {
                    *di = di.min((x + cn - 2.0 * xc).max(0.0));
                }
            }
        });
    // A centre is at distance 0 from itself; the expanded form may leave rounding there.
    for &i in pending {
        d2[i] = 0.0;
    }
}

/// Sums of `d2` over the fixed blocks of rows, in f64.
fn block_sums_of(d2: &[f32]) -> Vec<f64> {
    d2.par_chunks(BLOCK_ROWS)
        .map(|b| b.iter().map(|&v| v as f64).sum())
        .collect()
}

/// Draws a row with probability proportional to `d2`, walking the fixed block sums first so
/// the draw needs one pass over a single block. Falls back to a uniform draw among rows not
/// yet chosen when every row already coincides with a centre (duplicated rows).
fn sample_d2(d2: &[f32], block_sums: &[f64], chosen: &[bool], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = block_sums.iter().sum();
    let u = rng.random::<f64>() * total;
    if total > 0.0 && total.is_finite() {
        let mut acc = 0f64;
        for (b, &s) in block_sums.iter().enumerate() {
            if acc + s > u {
                let lo = b * BLOCK_ROWS;
                let hi = (lo + BLOCK_ROWS).min(d2.len());
                let mut last_positive = None;
                for (i, &d) in d2[lo..hi].iter().enumerate() {
                    if d > 0.0 {
                        acc += d as f64;
                        last_positive = Some(lo + i);
                        if acc > u {
                            return lo + i;
                        }
                    }
                }
                // Rounding left `u` past the block's own sum: its last positive row is the
                // one the draw landed on.
                if let Some(i) = last_positive {
                    return i;
                }
            }
            acc += s;
        }
        if let Some(i) = d2.iter().rposition(|&d| d > 0.0) {
            return i;
        }
    }
    let start = rng.random_range(0..d2.len());
    (0..d2.len())
        .map(|o| (start + o) % d2.len())
        .find(|&i| !chosen[i])
        .unwrap_or(start)
}

/// Where the assignment step runs.
enum Assigner {
    /// sgemm per block of rows on the rayon pool. `lower` is each row's lower bound on the
    /// distance to every centroid but its own, so later passes can skip rows (Hamerly).
    Cpu { lower: Vec<f32> },
    /// Candle matmuls on a device, with the rows uploaded once.
    Tensor {
        rows: Tensor,
        sq_norms: Tensor,
        device: Device,
    },
}

impl Assigner {
    fn cpu() -> Self {
        Assigner::Cpu { lower: Vec::new() }
    }

    fn tensor(data: &[f32], dim: usize, device: &Device) -> Result<Self> {
        let n = data.len() / dim.max(1);
        let rows = Tensor::from_slice(data, (n, dim), device)?;
        let sq_norms = rows.sqr()?.sum_keepdim(1)?;
        Ok(Assigner::Tensor {
            rows,
            sq_norms,
            device: device.clone(),
        })
    }

    /// Scores every row against every centroid and writes its nearest centroid and squared
    /// distance; returns the inertia.
    fn assign(
        &mut self,
        data: &[f32],
        dim: usize,
        centroids: &[f32],
        assignments: &mut [u32],
        d2: &mut [f32],
    ) -> Result<f64> {
        match self {
            Assigner::Cpu { lower } => {
                lower.resize(assignments.len(), 0.0);
                Ok(assign_cpu(data, dim, centroids, assignments, d2, lower))
            }
            Assigner::Tensor {
                rows,
                sq_norms,
                device,
            } => assign_tensor(rows, sq_norms, device, dim, centroids, assignments, d2),
        }
    }

    /// The assignment after the centroids moved from `old`: on the CPU, rows whose centroid
    /// provably stays the nearest keep it without being scored.
    #[allow(clippy::too_many_arguments)]
    fn reassign(
        &mut self,
        data: &[f32],
        dim: usize,
        old: &[f32],
        centroids: &[f32],
        assignments: &mut [u32],
        d2: &mut [f32],
    ) -> Result<f64> {
        match self {
            Assigner::Cpu { lower } => {
                Ok(assign_bounded(data, dim, old, centroids, assignments, d2, lower).0)
            }
            Assigner::Tensor { .. } => self.assign(data, dim, centroids, assignments, d2),
        }
    }

    /// Whether `reassign` may skip rows, so a last full pass is needed for the assignments
    /// to be exactly those of [`KMeans::assign`] (the bounds hold only up to rounding).
    fn skips(&self) -> bool {
        matches!(self, Assigner::Cpu { .. })
    }
}

/// Nearest and second-nearest centroid of each of `rows` by the expanded distance, from one
/// sgemm. `emit(i, best, d2, lower)` gets the exact squared distance to the nearest and a
/// lower bound on the distance (not squared) to any other centroid, shrunk by the rounding
/// error of the expanded form so it never overstates the gap.
fn nearest_two(
    rows: &[f32],
    dim: usize,
    centroids: &[f32],
    c_norms: &[f32],
    scores: &mut Vec<f32>,
    mut emit: impl FnMut(usize, u32, f32, f32),
) {
    let k = c_norms.len();
    let m = rows.len() / dim;
    let c_max = c_norms.iter().fold(0f32, |a, &b| a.max(b));
    scores.resize(m * k, 0.0);
    sgemm_nt(rows, centroids, scores, m, k, dim);
    for (i, (row, s)) in rows
        .chunks_exact(dim)
        .zip(scores.chunks_exact(k))
        .enumerate()
    {
        let (mut best, mut v1, mut v2) = (0, f32::INFINITY, f32::INFINITY);
        for (j, (&cn, &xc)) in c_norms.iter().zip(s).enumerate() {
            let v = cn - 2.0 * xc;
            if v < v1 {
                v2 = v1;
                v1 = v;
                best = j;
            } else if v < v2 {
                v2 = v;
            }
        }
        let xn = dot(row, row);
        let margin = (xn + c_max) * dim as f32 * 4.0 * f32::EPSILON;
        let lower = (xn + v2 - margin).max(0.0).sqrt();
        let exact = sq_dist(row, &centroids[best * dim..(best + 1) * dim]);
        emit(i, best as u32, exact, lower);
    }
}

/// Every row scored against every centroid (one sgemm per block of rows), then the exact
/// squared distance to the nearest, so the inertia carries no cancellation error.
fn assign_cpu(
    data: &[f32],
    dim: usize,
    centroids: &[f32],
    assignments: &mut [u32],
    d2: &mut [f32],
    lower: &mut [f32],
) -> f64 {
    let c_norms: Vec<f32> = centroids.chunks_exact(dim).map(|c| dot(c, c)).collect();
    let block_sums: Vec<f64> = data
        .par_chunks(BLOCK_ROWS * dim)
        .zip(assignments.par_chunks_mut(BLOCK_ROWS))
        .zip(d2.par_chunks_mut(BLOCK_ROWS))
        .zip(lower.par_chunks_mut(BLOCK_ROWS))
        .map_init(Vec::new, |scores, (((rows, a), d), l)| {
            nearest_two(rows, dim, centroids, &c_norms, scores, |i, best, e, lo| {
                a[i] = best;
                d[i] = e;
                l[i] = lo;
            });
            d.iter().map(|&v| v as f64).sum::<f64>()
        })
        .collect();
    block_sums.iter().sum()
}

/// Hamerly's bounds (SDM 2010) for a Lloyd assignment after the centroids moved from `old`.
/// A row keeps its centroid `a` unscored when its exact distance `u` to it is at most its
/// lower bound on every other centroid (the old bound minus the largest move among them)
/// or half the distance from `a` to its nearest other centroid. Late iterations, where the
/// centroids barely move, then cost one pass over the rows instead of an sgemm. Returns the
/// inertia and the number of rows scored.
fn assign_bounded(
    data: &[f32],
    dim: usize,
    old: &[f32],
    centroids: &[f32],
    assignments: &mut [u32],
    d2: &mut [f32],
    lower: &mut [f32],
) -> (f64, usize) {
    let moved: Vec<f32> = old
        .chunks_exact(dim)
        .zip(centroids.chunks_exact(dim))
        .map(|(a, b)| sq_dist(a, b).sqrt())
        .collect();
    // The largest move, and the largest among the others, for rows of the mover itself.
    let (mut far, mut m1, mut m2) = (0, 0f32, 0f32);
    for (j, &m) in moved.iter().enumerate() {
        if m > m1 {
            (far, m2, m1) = (j, m1, m);
        } else if m > m2 {
            m2 = m;
        }
    }
    let c_norms: Vec<f32> = centroids.chunks_exact(dim).map(|c| dot(c, c)).collect();
    let half_gap = half_gaps(centroids, dim, &c_norms);
    let blocks: Vec<(f64, usize)> = data
        .par_chunks(BLOCK_ROWS * dim)
        .zip(assignments.par_chunks_mut(BLOCK_ROWS))
        .zip(d2.par_chunks_mut(BLOCK_ROWS))
        .zip(lower.par_chunks_mut(BLOCK_ROWS))
        .map_init(
            || (Vec::new(), Vec::new(), Vec::new()),
            |(scores, gathered, idx), (((rows, a), d), l)| {
                gathered.clear();
                idx.clear();
                for (i, row) in rows.chunks_exact(dim).enumerate() {
                    let j = a[i] as usize;
                    l[i] -= if j == far { m2 } else { m1 };
                    d[i] = sq_dist(row, &centroids[j * dim..(j + 1) * dim]);
                    if d[i].sqrt() > l[i].max(half_gap[j]) {
                        idx.push(i);
                        gathered.extend_from_slice(row);
                    }
                }
                if !idx.is_empty() {
                    nearest_two(
                        gathered,
                        dim,
                        centroids,
                        &c_norms,
                        scores,
                        |g, best, e, lo| {
                            let i = idx[g];
                            a[i] = best;
                            d[i] = e;
                            l[i] = lo;
                        },
                    );
                }
                (d.iter().map(|&v| v as f64).sum::<f64>(), idx.len())
            },
        )
        .collect();
    (
        blocks.iter().map(|b| b.0).sum(),
        blocks.iter().map(|b| b.1).sum(),
    )
}

/// Half the distance from each centroid to its nearest other centroid (infinite for k = 1),
/// shrunk by the rounding error of the expanded form: a row closer than that to its own
/// centroid cannot be closer to another.
fn half_gaps(centroids: &[f32], dim: usize, c_norms: &[f32]) -> Vec<f32> {
    let k = c_norms.len();
    let c_max = c_norms.iter().fold(0f32, |a, &b| a.max(b));
    let margin = 2.0 * c_max * dim as f32 * 4.0 * f32::EPSILON;
    let mut out = vec![0f32; k];
    out.par_chunks_mut(BLOCK_ROWS)
        .zip(centroids.par_chunks(BLOCK_ROWS * dim))
        .enumerate()
        .for_each(|(b, (out, rows))| {
            let m = rows.len() / dim;
            let mut g = vec![0f32; m * k];
            sgemm_nt(rows, centroids, &mut g, m, k, dim);
            for (i, (o, gi)) in out.iter_mut().zip(g.chunks_exact(k)).enumerate() {
                let me = b * BLOCK_ROWS + i;
                let min = gi
                    .iter()
                    .zip(c_norms)
                    .enumerate()
                    .filter(|&(j, _)| j != me)
                    .map(|(_, (&x, &cn))| c_norms[me] + cn - 2.0 * x)
                    .fold(f32::INFINITY, f32::min);
                *o = 0.5 * (min - margin).max(0.0).sqrt();
            }
        });
    out
}

/// The assignment as candle matmuls, in row blocks that bound the score buffer.
fn assign_tensor(
    rows: &Tensor,
    sq_norms: &Tensor,
    device: &Device,
    dim: usize,
    centroids: &[f32],
    assignments: &mut [u32],
    d2: &mut [f32],
) -> Result<f64> {
    let n = assignments.len();
    let k = centroids.len() / dim;
    let c = Tensor::from_slice(centroids, (k, dim), device)?;
    let c_norms = c.sqr()?.sum_keepdim(1)?.t()?;
    let ct = c.t()?;
    let block = (MAX_DEVICE_SCORES / k).clamp(1, n);
    let mut start = 0;
    while start < n {
        let m = block.min(n - start);
        let x = rows.narrow(0, start, m)?;
        let dist = x
            .matmul(&ct)?
            .affine(-2.0, 0.0)?
            .broadcast_add(&c_norms)?
            .broadcast_add(&sq_norms.narrow(0, start, m)?)?;
        let best = dist.argmin(1)?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        let min = dist.min(1)?.relu()?.to_vec1::<f32>()?;
        assignments[start..start + m].copy_from_slice(&best);
        d2[start..start + m].copy_from_slice(&min);
        start += m;
    }
    // Summed on the host in block order, as on the CPU path.
    Ok(d2
        .chunks(BLOCK_ROWS)
        .map(|b| b.iter().map(|&v| v as f64).sum::<f64>())
        .sum())
}

/// Per-cluster sums (f64) and counts of the member rows, kept across iterations so that an
/// update costs O(moved rows × dim) once few rows change cluster: with Hamerly's bounds the
/// late iterations are otherwise cheaper than summing every row again.
///
/// Every sum is taken per cluster over its rows in row order (parallel across clusters), so
/// it does not depend on the thread count.
struct ClusterSums {
    dim: usize,
    sums: Vec<f64>,
    counts: Vec<usize>,
}

impl ClusterSums {
    /// Sums every row into its cluster.
    fn new(data: &[f32], dim: usize, k: usize, assignments: &[u32]) -> Self {
        let mut out = ClusterSums {
            dim,
            sums: vec![0.0; k * dim],
            counts: vec![0; k],
        };
        let events: Vec<(u32, u32)> = assignments
            .iter()
            .enumerate()
            .map(|(i, &a)| (a, i as u32))
            .collect();
        out.apply_events(data, &events, &[]);
        out
    }

    /// Moves the rows whose cluster went from `before` to `after`. When most rows moved, a
    /// fresh sum is cheaper, and it also bounds the drift of the running sums.
    fn update(&mut self, data: &[f32], before: &[u32], after: &[u32]) {
        let moved: Vec<u32> = (0..before.len() as u32)
            .filter(|&i| before[i as usize] != after[i as usize])
            .collect();
        if moved.len() * 2 > before.len() {
            *self = ClusterSums::new(data, self.dim, self.counts.len(), after);
            return;
        }
        let joins: Vec<(u32, u32)> = moved.iter().map(|&i| (after[i as usize], i)).collect();
        let leaves: Vec<(u32, u32)> = moved.iter().map(|&i| (before[i as usize], i)).collect();
        self.apply_events(data, &joins, &leaves);
    }

    /// Adds the rows of `joins` to and subtracts those of `leaves` from their clusters,
    /// each `(cluster, row)` list in row order.
    fn apply_events(&mut self, data: &[f32], joins: &[(u32, u32)], leaves: &[(u32, u32)]) {
        let k = self.counts.len();
        let dim = self.dim;
        // Counting sort by cluster, stable so each cluster sees its rows in row order.
        let group = |events: &[(u32, u32)]| {
            let mut offsets = vec![0usize; k + 1];
            for &(c, _) in events {
                offsets[c as usize + 1] += 1;
            }
            for j in 0..k {
                offsets[j + 1] += offsets[j];
            }
            let mut fill = offsets.clone();
            let mut rows = vec![0u32; events.len()];
            for &(c, i) in events {
                rows[fill[c as usize]] = i;
                fill[c as usize] += 1;
            }
            (offsets, rows)
        };
        let (join_at, join_rows) = group(joins);
        let (leave_at, leave_rows) = group(leaves);
        self.sums
            .par_chunks_mut(dim)
            .zip(self.counts.par_iter_mut())
            .enumerate()
            .for_each(|(j, (sum, count))| {
                let row = |i: u32| &data[i as usize * dim..(i as usize + 1) * dim];
                for &i in &leave_rows[leave_at[j]..leave_at[j + 1]] {
                    sum.iter_mut()
                        .zip(row(i))
                        .for_each(|(s, &v)| *s -= v as f64);
                }
                for &i in &join_rows[join_at[j]..join_at[j + 1]] {
                    sum.iter_mut()
                        .zip(row(i))
                        .for_each(|(s, &v)| *s += v as f64);
                }
                *count = *count + (join_at[j + 1] - join_at[j]) - (leave_at[j + 1] - leave_at[j]);
                if *count == 0 {
                    sum.iter_mut().for_each(|s| *s = 0.0);
                }
            });
    }

    /// The mean of each cluster. A cluster left empty is re-seeded with the row farthest
    /// from its centroid (`d2`; ties: lowest row), each empty cluster taking the next one.
    fn centroids(&self, data: &[f32], d2: &[f32]) -> Vec<f32> {
        let dim = self.dim;
        let mut centroids = vec![0f32; self.sums.len()];
        centroids
            .par_chunks_mut(dim)
            .zip(self.sums.par_chunks(dim))
            .zip(self.counts.par_iter())
            .filter(|(_, &c)| c > 0)
            .for_each(|((out, sum), &c)| {
                let inv = 1.0 / c as f64;
                out.iter_mut()
                    .zip(sum)
                    .for_each(|(o, s)| *o = (s * inv) as f32);
            });
        let empty: Vec<usize> = (0..self.counts.len())
            .filter(|&j| self.counts[j] == 0)
            .collect();
        if !empty.is_empty() {
            let mut far: Vec<u32> = (0..d2.len() as u32).collect();
            far.sort_unstable_by(|&a, &b| {
                d2[b as usize].total_cmp(&d2[a as usize]).then(a.cmp(&b))
            });
            for (&j, &i) in empty.iter().zip(&far) {
                let i = i as usize;
                centroids[j * dim..(j + 1) * dim].copy_from_slice(&data[i * dim..(i + 1) * dim]);
            }
        }
        centroids
    }
}

fn normalise_rows(rows: &mut [f32], dim: usize) {
    for row in rows.chunks_exact_mut(dim) {
        let norm = dot(row, row).sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
}

/// Eight independent lanes let the compiler vectorise the reduction; the lane order is fixed,
/// so the result is too.
#[inline]
fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((l, &xv), &yv) in acc.iter_mut().zip(x).zip(y) {
            *l += (xv - yv) * (xv - yv);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((l, &xv), &yv) in acc.iter_mut().zip(x).zip(y) {
            *l += xv * yv;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `out[m, n] = a[m, dim] · b[n, dim]ᵀ`, all row-major, single-threaded: the callers already
/// run one block per rayon task.
fn sgemm_nt(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, dim: usize) {
    assert!(a.len() >= m * dim && b.len() >= n * dim && out.len() >= m * n);
    // SAFETY: the assert above bounds every index the strides below can reach:
    // out[i, j] at i*n + j, a[i, l] at i*dim + l, bᵀ[l, j] = b[j, l] at j*dim + l.
    unsafe {
        gemm::gemm(
            m,
            n,
            dim,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            dim as isize,
            b.as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..rows * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect()
    }

    #[test]
    fn lane_reductions_match_plain_sums() {
        for dim in [1, 7, 8, 9, 33] {
            let a = random(1, dim, 1);
            let b = random(1, dim, 2);
            let d: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
            let p: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((sq_dist(&a, &b) - d).abs() < 1e-5, "dim {dim}");
            assert!((dot(&a, &b) - p).abs() < 1e-5, "dim {dim}");
        }
    }

    #[test]
    fn sgemm_assignment_matches_brute_force() {
        let (n, k, dim) = (1000, 17, 12);
        let data = random(n, dim, 3);
        let cents = random(k, dim, 4);
        let mut a = vec![0; n];
        let mut d2 = vec![0.0; n];
        let mut lower = vec![0.0; n];
        let inertia = assign_cpu(&data, dim, &cents, &mut a, &mut d2, &mut lower);
        let mut want_inertia = 0f64;
        for (i, row) in data.chunks(dim).enumerate() {
            let dists: Vec<f32> = cents.chunks(dim).map(|c| sq_dist(row, c)).collect();
            let best = dists[a[i] as usize];
            let min = dists.iter().cloned().fold(f32::INFINITY, f32::min);
            // The expanded form may pick a different centroid only on a near tie.
            assert!(best - min < 1e-4, "row {i}: {best} vs {min}");
            assert_eq!(d2[i], best);
            want_inertia += best as f64;
        }
        assert!((inertia - want_inertia).abs() < 1e-6 * want_inertia);
    }

    #[test]
    fn d2_sampling_never_draws_a_zero_weight_row() {
        let d2: Vec<f32> = (0..1000)
            .map(|i| if i % 3 == 0 { 0.0 } else { 1.0 })
            .collect();
        let sums: Vec<f64> = d2
            .chunks(BLOCK_ROWS)
            .map(|b| b.iter().map(|&v| v as f64).sum())
            .collect();
        let chosen = vec![false; d2.len()];
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut seen = vec![0; d2.len()];
        for _ in 0..20_000 {
            let i = sample_d2(&d2, &sums, &chosen, &mut rng);
            assert!(d2[i] > 0.0, "drew row {i}");
            seen[i] += 1;
        }
        // Every positive row is reachable (about 30 draws each).
        assert!((0..1000).filter(|i| i % 3 != 0).all(|i| seen[i] > 0));
    }

    #[test]
    fn d2_sampling_falls_back_to_unchosen_rows_when_all_weights_are_zero() {
        let d2 = vec![0.0f32; 10];
        let sums = vec![0.0f64];
        let mut chosen = vec![true; 10];
        chosen[7] = false;
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        assert_eq!(sample_d2(&d2, &sums, &chosen, &mut rng), 7);
    }

    #[test]
    fn kmeans_pp_picks_every_distinct_row_when_k_equals_n() {
        // More than MAX_PENDING picks, so the distances are refreshed along the way.
        let (n, dim) = (150, 5);
        let data = random(n, dim, 7);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let cents = kmeans_pp(&data, dim, n, &mut rng);
        let mut rows: Vec<usize> = cents
            .chunks(dim)
            .map(|c| data.chunks(dim).position(|r| r == c).unwrap())
            .collect();
        rows.sort();
        assert_eq!(rows, (0..n).collect::<Vec<_>>());
    }

    /// The first three picks on four points of a line, tallied over many seeds, against the
    /// exact k-means++ probabilities; the third pick goes through the rejection step.
    #[test]
    fn seeding_follows_the_d2_distribution() {
        let xs = [0.0f32, 1.0, 3.0, 7.0];
        let runs = 20_000;
        let mut got = std::collections::HashMap::new();
        for seed in 0..runs {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let c = kmeans_pp(&xs, 1, 3, &mut rng);
            let idx: Vec<usize> = c
                .iter()
                .map(|v| xs.iter().position(|x| x == v).unwrap())
                .collect();
            *got.entry((idx[0], idx[1], idx[2])).or_insert(0usize) += 1;
        }
        let d2 = |a: usize, b: usize| ((xs[a] - xs[b]) as f64).powi(2);
        for a in 0..4 {
            for b in (0..4).filter(|&b| b != a) {
                for c in (0..4).filter(|&c| c != a && c != b) {
                    let pb = d2(a, b) / (0..4).map(|j| d2(a, j)).sum::<f64>();
                    let near = |j: usize| d2(a, j).min(d2(b, j));
                    let pc = near(c) / (0..4).map(near).sum::<f64>();
                    let want = 0.25 * pb * pc;
                    let freq = *got.get(&(a, b, c)).unwrap_or(&0) as f64 / runs as f64;
                    let sigma = (want * (1.0 - want) / runs as f64).sqrt();
                    assert!(
                        (freq - want).abs() < 4.0 * sigma + 1e-9,
                        "({a}, {b}, {c}): {freq} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn refresh_lowers_distances_to_the_new_centres_only() {
        let (n, dim) = (600, 7);
        let data = random(n, dim, 16);
        let norms: Vec<f32> = data.chunks(dim).map(|r| dot(r, r)).collect();
        let mut d2 = vec![1.5f32; n];
        let pending = [3, 400, 599];
        refresh_d2(&data, dim, &norms, &pending, &mut d2);
        for (i, r) in data.chunks(dim).enumerate() {
            let want = pending
                .iter()
                .map(|&p| sq_dist(r, &data[p * dim..(p + 1) * dim]))
                .fold(1.5f32, f32::min);
            assert!((d2[i] - want).abs() < 1e-5, "row {i}: {} vs {want}", d2[i]);
        }
        assert!(pending.iter().all(|&p| d2[p] == 0.0));
    }

    #[test]
    fn update_takes_means_and_reseeds_empty_clusters_from_the_farthest_rows() {
        let dim = 2;
        let data = [0.0, 0.0, 2.0, 0.0, 10.0, 10.0, 5.0, 5.0];
        let assign = [0, 0, 1, 1];
        let d2 = [1.0, 1.0, 30.0, 40.0];
        let c = ClusterSums::new(&data, dim, 4, &assign).centroids(&data, &d2);
        assert_eq!(&c[..2], &[1.0, 0.0]);
        assert_eq!(&c[2..4], &[7.5, 7.5]);
        // Clusters 2 and 3 were empty: the farthest row (3), then the next (2).
        assert_eq!(&c[4..6], &[5.0, 5.0]);
        assert_eq!(&c[6..8], &[10.0, 10.0]);
    }

    #[test]
    fn running_sums_match_fresh_sums_after_moves() {
        let (n, k, dim) = (900, 7, 6);
        let data = random(n, dim, 17);
        let mut rng = ChaCha8Rng::seed_from_u64(18);
        let mut a: Vec<u32> = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
        let mut sums = ClusterSums::new(&data, dim, k, &a);
        // Few moves (incremental), then most rows (fresh), then emptying cluster 0.
        for frac in [0.05, 0.9, 0.0] {
            let before = a.clone();
            for (i, x) in a.iter_mut().enumerate() {
                if frac == 0.0 {
                    if *x == 0 {
                        *x = 1 + (i % (k - 1)) as u32;
                    }
                } else if rng.random::<f64>() < frac {
                    *x = rng.random_range(0..k as u32);
                }
            }
            sums.update(&data, &before, &a);
            let fresh = ClusterSums::new(&data, dim, k, &a);
            assert_eq!(sums.counts, fresh.counts);
            for (x, y) in sums.sums.iter().zip(&fresh.sums) {
                assert!((x - y).abs() < 1e-12, "{x} vs {y}");
            }
        }
        assert_eq!(sums.counts[0], 0);
        assert!(sums.sums[..dim].iter().all(|&s| s == 0.0));
    }

    #[test]
    fn bounded_reassignment_matches_a_full_pass_and_skips_unmoved_rows() {
        let (n, k, dim) = (3000, 24, 16);
        let data = random(n, dim, 12);
        let c0 = random(k, dim, 13);
        let (mut a, mut d, mut l) = (vec![0; n], vec![0.0; n], vec![0.0; n]);
        assign_cpu(&data, dim, &c0, &mut a, &mut d, &mut l);
        // Nothing moved: every row keeps its centroid unscored.
        let (a0, d0) = (a.clone(), d.clone());
        let (_, scored) = assign_bounded(&data, dim, &c0, &c0, &mut a, &mut d, &mut l);
        assert_eq!(scored, 0);
        assert_eq!((a.clone(), d.clone()), (a0, d0));
        // Small and then large moves: the same answer as scoring every row.
        let mut prev = c0;
        for (step, scale) in [(0, 0.01f32), (1, 0.05), (2, 0.5)] {
            let noise = random(k, dim, 14 + step);
            let next: Vec<f32> = prev
                .iter()
                .zip(&noise)
                .map(|(c, e)| c + scale * e)
                .collect();
            let (inertia, scored) =
                assign_bounded(&data, dim, &prev, &next, &mut a, &mut d, &mut l);
            let (mut fa, mut fd, mut fl) = (vec![0; n], vec![0.0; n], vec![0.0; n]);
            let full = assign_cpu(&data, dim, &next, &mut fa, &mut fd, &mut fl);
            let agree = a.iter().zip(&fa).filter(|(x, y)| x == y).count();
            assert!(agree >= n - 2, "move {scale}: {agree} of {n} agree");
            assert!((inertia - full).abs() < 1e-5 * full);
            assert!(
                scored > 0 && (scale > 0.1 || scored < n),
                "move {scale}: {scored} scored"
            );
            // The bounds stay valid: no other centroid is nearer than the lower bound.
            for (i, row) in data.chunks(dim).enumerate() {
                for (j, c) in next.chunks(dim).enumerate() {
                    if j as u32 != a[i] {
                        assert!(
                            sq_dist(row, c).sqrt() >= l[i] - 1e-4,
                            "row {i}, centroid {j}"
                        );
                    }
                }
            }
            prev = next;
        }
    }

    #[test]
    fn half_gaps_are_half_the_nearest_centroid_distance() {
        let (k, dim) = (300, 5);
        let c = random(k, dim, 15);
        let norms: Vec<f32> = c.chunks(dim).map(|r| dot(r, r)).collect();
        let got = half_gaps(&c, dim, &norms);
        for (i, ci) in c.chunks(dim).enumerate() {
            let want = c
                .chunks(dim)
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, cj)| sq_dist(ci, cj).sqrt())
                .fold(f32::INFINITY, f32::min)
                / 2.0;
            assert!(
                got[i] <= want + 1e-6 && got[i] > want - 1e-3,
                "{i}: {} vs {want}",
                got[i]
            );
        }
        assert_eq!(half_gaps(&c[..dim], dim, &norms[..1]), vec![f32::INFINITY]);
    }

    #[test]
    fn tensor_assignment_on_cpu_agrees_with_sgemm_assignment() {
        let (n, k, dim) = (700, 9, 16);
        let data = random(n, dim, 9);
        let cents = random(k, dim, 10);
        let (mut a1, mut d1) = (vec![0; n], vec![0.0; n]);
        let (mut a2, mut d2) = (vec![0; n], vec![0.0; n]);
        let i1 = Assigner::cpu()
            .assign(&data, dim, &cents, &mut a1, &mut d1)
            .unwrap();
        let mut t = Assigner::tensor(&data, dim, &Device::Cpu).unwrap();
        let i2 = t.assign(&data, dim, &cents, &mut a2, &mut d2).unwrap();
        let agree = a1.iter().zip(&a2).filter(|(x, y)| x == y).count();
        assert!(agree >= n - 2, "{agree} of {n} rows agree");
        assert!((i1 - i2).abs() < 1e-4 * i1, "{i1} vs {i2}");
    }

    #[test]
    fn tensor_path_fits_the_same_clustering_as_the_cpu_path() {
        // Three far-apart blobs: both paths must find them and agree row for row.
        let dim = 4;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut data = Vec::new();
        for i in 0..300 {
            let c = (i % 3) as f32 * 20.0;
            data.extend((0..dim).map(|_| c + rng.random_range(-1.0f32..1.0)));
        }
        let cfg = KMeansConfig {
            k: 3,
            seed: 2,
            ..Default::default()
        };
        let cpu = kmeans(&data, dim, &cfg).unwrap();
        let mut t = Assigner::tensor(&data, dim, &Device::Cpu).unwrap();
        let tensor = fit(&data, dim, &cfg, &mut t).unwrap();
        assert_eq!(cpu.assignments, tensor.assignments);
        assert!((cpu.inertia - tensor.inertia).abs() < 1e-3 * cpu.inertia);
    }
}
