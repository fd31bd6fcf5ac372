//! Principal components: a 2-D projection for scatter plots of embeddings in the report
//! ([`Pca2d`]), and every axis ([`Pca`]) for the PCA compression baseline.
//!
//! Hand-written: no lean crate computes a few principal components without pulling in a
//! LAPACK binding (ndarray-linalg) or a general linear-algebra stack for one plot. The rows
//! are centred, their `dim × dim` covariance is accumulated in f64 (one f64 gemm per block of
//! rows, blocks added in row order), and the top two eigenvectors come from power iteration
//! with deflation. The start vector is seeded and each component's sign is fixed (its
//! largest-magnitude entry is positive), so the projection is deterministic. All axes come
//! from cyclic Jacobi rotations instead (power iteration would need `dim` deflations).

use crate::error::{IndexError, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Rows centred and multiplied per gemm; fixed so the sum order never changes.
const BLOCK_ROWS: usize = 1024;
/// Power iterations per component at most; each costs one `dim × dim` product.
const MAX_POWER_ITERS: usize = 3000;
/// A component has converged when it moves less than this (Euclidean, unit vectors).
const POWER_TOL: f64 = 1e-12;

/// The top two principal axes of a set of rows, kept so other rows can be projected onto the
/// same plane (queries over a corpus plot, say).
#[derive(Debug, Clone, PartialEq)]
pub struct Pca2d {
    /// Width of the rows.
    pub dim: usize,
    /// Mean row, subtracted before projecting.
    pub mean: Vec<f64>,
    /// The two unit principal axes, largest variance first.
    pub components: [Vec<f64>; 2],
    /// Variance of the rows along each axis (population, divided by n).
    pub variances: [f64; 2],
    /// Total variance of the rows (trace of the covariance).
    pub total_variance: f64,
}

impl Pca2d {
    /// Finds the two axes of largest variance of `data` (row-major, width `dim`).
    pub fn fit(data: &[f32], dim: usize) -> Result<Self> {
        validate(data, dim)?;
        let mean = column_means(data, dim);
        let cov = covariance(data, dim, &mean);
        let total_variance = (0..dim).map(|i| cov[i * dim + i]).sum();
        let mut rng = ChaCha8Rng::seed_from_u64(0x9CA2D);
        let (v1, l1) = top_eigenvector(&cov, dim, &[], &mut rng);
        let (v2, l2) = top_eigenvector(&cov, dim, &[&v1], &mut rng);
        Ok(Pca2d {
            dim,
            mean,
            components: [v1, v2],
            variances: [l1, l2],
            total_variance,
        })
    }

    /// Share of the total variance the plane keeps; near 1 means the plot loses little.
    pub fn explained_variance_ratio(&self) -> f64 {
        if self.total_variance > 0.0 {
            (self.variances[0] + self.variances[1]) / self.total_variance
        } else {
            1.0
        }
    }

    /// Coordinates of each row of `data` on the two axes.
    pub fn project(&self, data: &[f32]) -> Result<Vec<[f32; 2]>> {
        validate_shape(data, self.dim)?;
        Ok(data
            .par_chunks(self.dim)
            .map(|row| {
                let mut out = [0f64; 2];
                for (o, c) in out.iter_mut().zip(&self.components) {
                    *o = row
                        .iter()
                        .zip(&self.mean)
                        .zip(c)
                        .map(|((&x, &m), &w)| (x as f64 - m) * w)
                        .sum();
                }
                [out[0] as f32, out[1] as f32]
            })
            .collect())
    }
}

/// Every principal axis of a set of rows, largest variance first: the linear compression
/// baseline of embedding compression (the first `d` axes keep the most variance any `d`-dim
/// linear projection can).
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Width of the rows.
    pub dim: usize,
    /// Mean row, subtracted before projecting.
    pub mean: Vec<f64>,
    /// `dim` unit axes, row-major `dim × dim`, by decreasing variance.
    pub components: Vec<f64>,
    /// Variance of the rows along each axis (population, divided by n).
    pub variances: Vec<f64>,
}

impl Pca {
    /// All axes of `data` (row-major, width `dim`) from the covariance's eigenvectors, found
    /// by cyclic Jacobi rotations (exact to rounding for a symmetric matrix; a few sweeps of
    /// `dim³` work, about a second for 384 dims). Each axis's sign is fixed as in [`Pca2d`].
    ///
    /// With `centered` false the mean is taken as zero, so the axes are those of the second
    /// moment `E[x xᵀ]`: the projection onto its top `d` axes preserves inner products best
    /// among `d`-dim linear maps, which is what a bias-free compression head needs (cosine
    /// search of centred vectors would need the mean subtracted at query time too).
    pub fn fit(data: &[f32], dim: usize, centered: bool) -> Result<Self> {
        validate(data, dim)?;
        let mean = match centered {
            true => column_means(data, dim),
            false => vec![0f64; dim],
        };
        let mut a = covariance(data, dim, &mean);
        let mut v = vec![0f64; dim * dim];
        for i in 0..dim {
            v[i * dim + i] = 1.0;
        }
        jacobi_eigen(&mut a, &mut v, dim);
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&x, &y| a[y * dim + y].total_cmp(&a[x * dim + x]).then(x.cmp(&y)));
        let mut components = Vec::with_capacity(dim * dim);
        let mut variances = Vec::with_capacity(dim);
        for &c in &order {
            // Column c of v is the eigenvector of eigenvalue a[c][c].
            let mut axis: Vec<f64> = (0..dim).map(|r| v[r * dim + c]).collect();
            let big = axis
                .iter()
                .copied()
                .fold(0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            if big < 0.0 {
                axis.iter_mut().for_each(|x| *x = -*x);
            }
            components.extend(axis);
            variances.push(a[c * dim + c].max(0.0));
        }
        Ok(Pca {
            dim,
            mean,
            components,
            variances,
        })
    }
}

/// Diagonalises the symmetric `a` (row-major `n × n`) in place by cyclic Jacobi rotations,
/// accumulating the rotations in `v` (its columns become the eigenvectors). Hand-written for
/// the reason given at the top of this file; the rotation is the numerically stable form of
/// Golub and Van Loan, Matrix Computations §8.5.
fn jacobi_eigen(a: &mut [f64], v: &mut [f64], n: usize) {
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let scale: f64 = (0..n).map(|i| a[i * n + i] * a[i * n + i]).sum::<f64>();
        if off <= 1e-30 * scale.max(1e-300) {
            return;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
}

/// The top-2 principal components of the rows, for scatter plots of embeddings.
pub fn pca_2d(data: &[f32], dim: usize) -> Result<Vec<[f32; 2]>> {
    Pca2d::fit(data, dim)?.project(data)
}

fn validate_shape(data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(IndexError::InvalidArgument(
            "PCA: dim must be at least 1".into(),
        ));
    }
    if data.len() % dim != 0 {
        return Err(IndexError::InvalidArgument(format!(
            "PCA: {} values are not rows of dimension {dim}",
            data.len()
        )));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(IndexError::InvalidArgument(format!(
            "PCA: row {} holds a non-finite value at column {}",
            i / dim,
            i % dim
        )));
    }
    Ok(data.len() / dim)
}

fn validate(data: &[f32], dim: usize) -> Result<usize> {
    let n = validate_shape(data, dim)?;
    if n == 0 {
        return Err(IndexError::InvalidArgument(
            "PCA: the data has no rows".into(),
        ));
    }
    Ok(n)
}

/// Column means in f64, per-block partial sums added in block order.
fn column_means(data: &[f32], dim: usize) -> Vec<f64> {
    let n = data.len() / dim;
    let partial: Vec<Vec<f64>> = data
        .par_chunks(BLOCK_ROWS * dim)
        .map(|rows| {
            let mut s = vec![0f64; dim];
            for row in rows.chunks_exact(dim) {
                for (a, &v) in s.iter_mut().zip(row) {
                    *a += v as f64;
                }
            }
            s
        })
        .collect();
    let mut mean = vec![0f64; dim];
    for p in partial {
        for (m, v) in mean.iter_mut().zip(p) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    mean
}

/// `XᵀX / n` of the centred rows, row-major `dim × dim`.
fn covariance(data: &[f32], dim: usize, mean: &[f64]) -> Vec<f64> {
    let n = data.len() / dim;
    let mut cov = vec![0f64; dim * dim];
    let mut centred = vec![0f64; BLOCK_ROWS * dim];
    let threads = rayon::current_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    for rows in data.chunks(BLOCK_ROWS * dim) {
        let m = rows.len() / dim;
        let x = &mut centred[..m * dim];
        x.par_chunks_mut(dim)
            .zip(rows.par_chunks(dim))
            .for_each(|(out, row)| {
                for ((o, &v), &mu) in out.iter_mut().zip(row).zip(mean) {
                    *o = v as f64 - mu;
                }
            });
        // SAFETY: cov is dim×dim row-major (dst[i, j] at i*dim + j); lhs = xᵀ reads
        // x[l, i] at l*dim + i and rhs = x reads x[l, j] at l*dim + j, with l < m and
        // i, j < dim, all inside `x`, whose length is m*dim.
        unsafe {
            gemm::gemm(
                dim,
                dim,
                m,
                cov.as_mut_ptr(),
                1,
                dim as isize,
                true,
                x.as_ptr(),
                dim as isize,
                1,
                x.as_ptr(),
                1,
                dim as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
    }
    cov.iter_mut().for_each(|c| *c /= n as f64);
    cov
}

/// Power iteration for the top eigenvector of `cov` orthogonal to `found` (deflation by
/// projecting them out each step). Returns the unit vector and its eigenvalue; a zero vector
/// and 0 when nothing is left (rank below the component's index).
fn top_eigenvector(
    cov: &[f64],
    dim: usize,
    found: &[&[f64]],
    rng: &mut ChaCha8Rng,
) -> (Vec<f64>, f64) {
    let mut v: Vec<f64> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    orthogonalise(&mut v, found);
    if normalise(&mut v) == 0.0 {
        return (vec![0.0; dim], 0.0);
    }
    let mut w = vec![0f64; dim];
    let mut lambda = 0.0;
    for _ in 0..MAX_POWER_ITERS {
        w.par_iter_mut()
            .zip(cov.par_chunks(dim))
            .for_each(|(o, row)| *o = row.iter().zip(&v).map(|(a, b)| a * b).sum());
        orthogonalise(&mut w, found);
        lambda = normalise(&mut w);
        if lambda <= f64::EPSILON * (1.0 + trace(cov, dim)) {
            return (vec![0.0; dim], 0.0);
        }
        let moved: f64 = w.iter().zip(&v).map(|(a, b)| (a - b) * (a - b)).sum();
        std::mem::swap(&mut v, &mut w);
        if moved.sqrt() < POWER_TOL {
            break;
        }
    }
    let pivot = v
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i);
    if v[pivot] < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    (v, lambda)
}

fn trace(cov: &[f64], dim: usize) -> f64 {
    (0..dim).map(|i| cov[i * dim + i]).sum()
}

fn orthogonalise(v: &mut [f64], against: &[&[f64]]) {
    for u in against {
        let p: f64 = v.iter().zip(u.iter()).map(|(a, b)| a * b).sum();
        v.iter_mut().zip(u.iter()).for_each(|(a, b)| *a -= p * b);
    }
}

/// Scales `v` to unit length and returns its former length.
fn normalise(v: &mut [f64]) -> f64 {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

#[cfg(test)]
mod full_tests {
    use super::*;

    #[test]
    fn full_pca_finds_the_axes_of_a_known_covariance() {
        // Rows spread 3 units along (1, 1)/√2, 1 along (1, -1)/√2 and 0.1 along z.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut data = Vec::new();
        let r = std::f32::consts::FRAC_1_SQRT_2;
        for _ in 0..4000 {
            let (a, b, c): (f32, f32, f32) = (
                rng.random_range(-3.0..3.0),
                rng.random_range(-1.0..1.0),
                rng.random_range(-0.1..0.1),
            );
            data.extend([r * (a + b) + 5.0, r * (a - b), c]);
        }
        let p = Pca::fit(&data, 3, true).unwrap();
        assert!((p.mean[0] - 5.0).abs() < 0.1);
        assert!(p.variances[0] > p.variances[1] && p.variances[1] > p.variances[2]);
        let axis = &p.components[0..3];
        assert!(
            (axis[0] - std::f64::consts::FRAC_1_SQRT_2).abs() < 0.01
                && (axis[1] - std::f64::consts::FRAC_1_SQRT_2).abs() < 0.01,
            "{axis:?}"
        );
        assert!(
            (p.components[8].abs() - 1.0).abs() < 1e-3,
            "{:?}",
            &p.components[6..9]
        );
        // The axes are orthonormal.
        for i in 0..3 {
            for j in 0..3 {
                let d: f64 = (0..3)
                    .map(|k| p.components[i * 3 + k] * p.components[j * 3 + k])
                    .sum();
                assert!(
                    (d - f64::from(u8::from(i == j))).abs() < 1e-9,
                    "{i}{j}: {d}"
                );
            }
        }
        // The top axis agrees with the 2-D fit.
        let two = Pca2d::fit(&data, 3).unwrap();
        let dot: f64 = (0..3).map(|k| two.components[0][k] * axis[k]).sum();
        assert!((dot - 1.0).abs() < 1e-6, "{dot}");

        // Uncentred, the mean dominates: the top axis points at it.
        let u = Pca::fit(&data, 3, false).unwrap();
        assert_eq!(u.mean, vec![0.0; 3]);
        let m: Vec<f64> = p.mean.iter().map(|x| x / 5.0).collect();
        let dot: f64 = (0..3).map(|k| u.components[k] * m[k]).sum();
        assert!(dot > 0.9, "{:?}", &u.components[0..3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `a·u + b·w + offset` with `u ⟂ w` unit vectors in `dim` dimensions; the spread
    /// along `u` is three times that along `w`.
    fn plane(n: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<f64>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut u: Vec<f64> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        normalise(&mut u);
        let mut w: Vec<f64> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        orthogonalise(&mut w, &[&u]);
        normalise(&mut w);
        let offset: Vec<f64> = (0..dim).map(|_| rng.random_range(-5.0..5.0)).collect();
        let mut data = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let a = rng.random_range(-3.0..3.0);
            let b = rng.random_range(-1.0..1.0);
            data.extend((0..dim).map(|i| (a * u[i] + b * w[i] + offset[i]) as f32));
        }
        (data, u, w)
    }

    fn cos(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn recovers_the_axes_of_a_plane_in_ten_dimensions() {
        let (data, u, w) = plane(2500, 10, 1);
        let p = Pca2d::fit(&data, 10).unwrap();
        assert!(
            p.explained_variance_ratio() > 0.999_999,
            "{}",
            p.explained_variance_ratio()
        );
        assert!(cos(&p.components[0], &u).abs() > 0.9999);
        assert!(cos(&p.components[1], &w).abs() > 0.9999);
        // Uniform on [-3, 3] and [-1, 1]: variances 3 and 1/3.
        assert!((p.variances[0] - 3.0).abs() < 0.2, "{:?}", p.variances);
        assert!(
            (p.variances[1] - 1.0 / 3.0).abs() < 0.03,
            "{:?}",
            p.variances
        );
        assert!(cos(&p.components[0], &p.components[1]).abs() < 1e-9);
    }

    #[test]
    fn covariance_matches_a_direct_sum_across_blocks() {
        let dim = 3;
        let n = BLOCK_ROWS * 2 + 5;
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let data: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mean = column_means(&data, dim);
        let cov = covariance(&data, dim, &mean);
        for i in 0..dim {
            for j in 0..dim {
                let want: f64 = data
                    .chunks(dim)
                    .map(|r| (r[i] as f64 - mean[i]) * (r[j] as f64 - mean[j]))
                    .sum::<f64>()
                    / n as f64;
                assert!((cov[i * dim + j] - want).abs() < 1e-12, "({i}, {j})");
            }
        }
    }

    #[test]
    fn projection_is_deterministic_and_centred() {
        let (data, _, _) = plane(500, 6, 3);
        let a = pca_2d(&data, 6).unwrap();
        let b = pca_2d(&data, 6).unwrap();
        assert_eq!(a, b);
        let mean0: f64 = a.iter().map(|p| p[0] as f64).sum::<f64>() / a.len() as f64;
        assert!(mean0.abs() < 1e-4);
    }

    #[test]
    fn degenerate_inputs_give_zero_axes_instead_of_nan() {
        // One row, and a single column: nothing (or one axis) to find.
        let one = pca_2d(&[1.0, 2.0, 3.0], 3).unwrap();
        assert_eq!(one, vec![[0.0, 0.0]]);
        let col = Pca2d::fit(&[1.0, 2.0, 4.0], 1).unwrap();
        assert_eq!(col.components[1], vec![0.0]);
        assert!((col.explained_variance_ratio() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_empty_ragged_and_non_finite_input() {
        assert!(pca_2d(&[], 3).is_err());
        assert!(pca_2d(&[1.0; 4], 0).is_err());
        assert!(pca_2d(&[1.0; 4], 3).is_err());
        let err = pca_2d(&[1.0, f32::NAN], 2).unwrap_err().to_string();
        assert!(err.contains("row 0"), "{err}");
    }
}
