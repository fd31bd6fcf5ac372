//! Multi-head self-attention with a key-padding mask, fused, with its backward pass.
//!
//! The input is the output of the fused Q/K/V projection, `[batch·seq, 3·hidden]`, and the
//! output is the heads' context already merged back to `[batch·seq, hidden]`, so the
//! split-heads and merge-heads transposes (two full copies each way) never happen: each head's
//! blocks are read in place through strides. candle's batched matmul calls a multi-threaded
//! gemm per (batch, head) pair on 128×128×32 blocks, where thread start-up dominates; here
//! rayon splits the batch and each head runs a single-threaded gemm. The backward pass
//! recomputes the attention probabilities rather than storing them (as FlashAttention does),
//! which costs one extra small matmul per head and saves `batch·heads·seq²` floats per layer.
//!
//! Padding is on the right (the tokenizer pads that way), so the mask is one valid length per
//! sequence: keys past it get no weight. Padded query rows still attend to the valid keys, as
//! in HF BERT; pooling ignores them. The fused kernels also take packed rows (each sequence's
//! valid tokens only, back to back), where there is nothing to mask; see [`AttentionShape`].

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

use super::softmax::{softmax_composed, softmax_row, softmax_row_backward};
use super::{wide, Kernels, Real};

/// The shape of one attention call: `batch` sequences of `seq` tokens, and their valid lengths.
#[derive(Debug, Clone)]
pub struct AttentionShape {
    /// Sequences in the batch.
    pub batch: usize,
    /// Padded length of every sequence.
    pub seq: usize,
    /// Number of heads.
    pub heads: usize,
    /// Valid (unpadded) tokens of each sequence.
    pub lengths: Arc<[usize]>,
    /// Whether the rows hold only the valid tokens of each sequence, back to back, rather
    /// than `seq` rows per sequence. Every layer but attention works row by row, so packed
    /// rows let the whole encoder skip the padding's matmuls (fused kernels only).
    pub packed: bool,
}

impl AttentionShape {
    /// Sequences padded to `seq` rows each, keys past each length masked.
    pub fn padded(lengths: &[usize], seq: usize, heads: usize) -> Self {
        AttentionShape {
            batch: lengths.len(),
            seq,
            heads,
            lengths: lengths.into(),
            packed: false,
        }
    }

    /// Sequences packed back to back, each exactly its valid tokens.
    pub fn packed(lengths: &[usize], heads: usize) -> Self {
        AttentionShape {
            batch: lengths.len(),
            seq: lengths.iter().copied().max().unwrap_or(0),
            heads,
            lengths: lengths.into(),
            packed: true,
        }
    }

    /// Rows of the input this shape describes.
    pub fn rows(&self) -> usize {
        if self.packed {
            self.lengths.iter().sum()
        } else {
            self.batch * self.seq
        }
    }

    /// `(query rows, valid keys)` of each sequence, in row order. A padded sequence keeps at
    /// least one key, so that an empty one still has a defined softmax.
    fn spans(&self) -> Vec<(usize, usize)> {
        self.lengths
            .iter()
            .map(|&len| match self.packed {
                true => (len, len),
                false => (self.seq, len.clamp(1, self.seq.max(1))),
            })
            .collect()
    }

    /// Whether a `[rows, width]` input with this many heads fits the shape.
    pub(crate) fn fits(&self, rows: usize, hidden: usize) -> bool {
        rows == self.rows()
            && self.lengths.len() == self.batch
            && self.heads > 0
            && hidden % self.heads == 0
            && (self.packed || self.lengths.iter().all(|&l| l <= self.seq))
    }
}

/// Floats of every head's attention probabilities for a shape (`heads · rows · keys` per
/// sequence), the size of the buffer [`forward_into`] can keep for [`backward_into`].
pub(crate) fn probs_len(sh: &AttentionShape) -> usize {
    sh.spans().iter().map(|&(r, len)| sh.heads * r * len).sum()
}

/// `v` cut into consecutive pieces of the given sizes (one per sequence).
fn split_sizes<T>(mut v: &mut [T], sizes: impl IntoIterator<Item = usize>) -> Vec<&mut [T]> {
    sizes
        .into_iter()
        .map(|n| {
            let (head, rest) = std::mem::take(&mut v).split_at_mut(n);
            v = rest;
            head
        })
        .collect()
}

/// The start of each piece of [`split_sizes`].
fn offsets(sizes: impl IntoIterator<Item = usize>) -> Vec<usize> {
    sizes
        .into_iter()
        .scan(0, |at, n| {
            *at += n;
            Some(*at - n)
        })
        .collect()
}

/// Self-attention on a fused `[batch·seq, 3·hidden]` Q/K/V input, giving `[batch·seq, hidden]`.
pub fn attention(qkv: &Tensor, shape: &AttentionShape, kernels: Kernels) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => qkv.contiguous()?.apply_op1(Attention {
            shape: shape.clone(),
        }),
        Kernels::Composed => attention_composed(qkv, shape),
    }
}

/// The same function from plain candle ops: the reference, and the path off the CPU.
pub fn attention_composed(qkv: &Tensor, shape: &AttentionShape) -> Result<Tensor> {
    if shape.packed {
        candle_core::bail!("composed attention takes padded rows only");
    }
    let (b, s, nh) = (shape.batch, shape.seq, shape.heads);
    let hidden = qkv.dim(1)? / 3;
    let d = hidden / nh;
    let split = |i: usize| -> Result<Tensor> {
        qkv.narrow(1, i * hidden, hidden)?
            .reshape((b, s, nh, d))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (q, k, v) = (split(0)?, split(1)?, split(2)?);
    let mask: Vec<f32> = (0..b)
        .flat_map(|i| (0..s).map(move |j| if j < shape.lengths[i] { 0.0 } else { f32::MIN }))
        .collect();
    let mask = Tensor::from_vec(mask, (b, 1, 1, s), qkv.device())?.to_dtype(qkv.dtype())?;
    let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(&mask)?;
    let probs = softmax_composed(&scores)?;
    probs.matmul(&v)?.transpose(1, 2)?.reshape((b * s, hidden))
}

struct Attention {
    shape: AttentionShape,
}

/// `dst[m×n] = beta · lhs[m×k] · rhs[k×n]` (+ dst when `acc`), all given by row and column strides.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn matmul<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: *mut T,
    dst_rs: usize,
    lhs: *const T,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const T,
    (rhs_rs, rhs_cs): (usize, usize),
    beta: T,
) {
    gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        false,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        T::ZERO,
        beta,
        false,
        false,
        false,
        Parallelism::None,
    )
}

/// Scores and probabilities `P = softmax(scale · Q Kᵀ)` of one head, `[seq × len]` row-major.
#[inline(always)]
unsafe fn probabilities<T: Real>(
    qkv: &[T],
    s: usize,
    len: usize,
    hidden: usize,
    col: usize,
    d: usize,
    p: &mut [T],
) {
    let w = 3 * hidden;
    let q = qkv.as_ptr().add(col);
    let k = qkv.as_ptr().add(hidden + col);
    matmul(
        (s, len, d),
        p.as_mut_ptr(),
        len,
        q,
        (w, 1),
        k,
        (1, w),
        T::ONE,
    );
    let scale = T::from_f64(1.0 / (d as f64).sqrt());
    for row in p.chunks_exact_mut(len) {
        softmax_row(row, len, scale);
    }
}

fn forward<T: Real>(qkv: &[T], sh: &AttentionShape) -> Vec<T> {
    let mut out = vec![T::ZERO; qkv.len() / 3];
    forward_into(qkv, sh, &mut out, None);
    out
}

/// The forward kernel, writing every entry of `out` (`[rows, hidden]`). With `keep` (of
/// [`probs_len`] floats) the probabilities stay there for [`backward_into`], which then need
/// not recompute them.
pub(crate) fn forward_into<T: Real>(
    qkv: &[T],
    sh: &AttentionShape,
    out: &mut [T],
    keep: Option<&mut [T]>,
) {
    let rows = sh.rows();
    if rows == 0 {
        return;
    }
    let nh = sh.heads;
    let hidden = qkv.len() / (rows * 3);
    let d = hidden / nh;
    let spans = sh.spans();
    let from = offsets(spans.iter().map(|&(r, _)| r * 3 * hidden));
    let mut kept: Vec<Option<&mut [T]>> = match keep {
        Some(k) => split_sizes(k, spans.iter().map(|&(r, len)| nh * r * len))
            .into_iter()
            .map(Some)
            .collect(),
        None => spans.iter().map(|_| None).collect(),
    };
    split_sizes(out, spans.iter().map(|&(r, _)| r * hidden))
        .into_par_iter()
        .zip(kept.par_drain(..))
        .zip(from)
        .zip(spans)
        .filter(|(_, (r, _))| *r > 0)
        .for_each(|(((o, keep), at), (r, len))| {
            let x = &qkv[at..at + r * 3 * hidden];
            wide(
                #[inline(always)]
                || {
                    // Kept: head h at h·r·len; else one scratch block reused by every head.
                    let mut scratch = Vec::new();
                    let (all, stride) = match keep {
                        Some(k) => (k, r * len),
                        None => {
                            scratch.resize(r * len, T::ZERO);
                            (&mut scratch[..], 0)
                        }
                    };
                    for h in 0..nh {
                        let p = &mut all[h * stride..][..r * len];
                        // SAFETY: every block lies inside `x` (r rows of 3·hidden) or `o` (r
                        // rows of hidden), since h·d + d ≤ hidden and len ≤ r.
                        unsafe {
                            probabilities(x, r, len, hidden, h * d, d, p);
                            let v = x.as_ptr().add(2 * hidden + h * d);
                            matmul(
                                (r, d, len),
                                o.as_mut_ptr().add(h * d),
                                hidden,
                                p.as_ptr(),
                                (len, 1),
                                v,
                                (3 * hidden, 1),
                                T::ONE,
                            );
                        }
                    }
                },
            )
        });
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (rows, w) = l.shape().dims2()?;
        let sh = &self.shape;
        if w % 3 != 0 || !sh.fits(rows, w / 3) {
            candle_core::bail!("{name}: input {:?} does not fit {sh:?}", l.dims());
        }
        let out = float_kernel!(name, [st, l => x], forward(x, sh));
        Ok((out, Shape::from((rows, w / 3))))
    }

    fn bwd(&self, qkv: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let g = grad.contiguous()?;
        Ok(Some(qkv.apply_op2_no_bwd(
            &g,
            &AttentionBackward {
                shape: self.shape.clone(),
            },
        )?))
    }
}

/// Gradient wrt the fused Q/K/V input, laid out like it.
struct AttentionBackward {
    shape: AttentionShape,
}

fn backward<T: Real>(qkv: &[T], dout: &[T], sh: &AttentionShape) -> Vec<T> {
    let mut dqkv = vec![T::ZERO; qkv.len()];
    backward_into(qkv, dout, sh, &mut dqkv, None);
    dqkv
}

/// The backward kernel, writing every entry of `dqkv` (laid out like `qkv`); `kept` holds
/// the probabilities [`forward_into`] kept, else they are recomputed.
pub(crate) fn backward_into<T: Real>(
    qkv: &[T],
    dout: &[T],
    sh: &AttentionShape,
    dqkv: &mut [T],
    kept: Option<&[T]>,
) {
    let rows = sh.rows();
    if rows == 0 {
        return;
    }
    let nh = sh.heads;
    let hidden = qkv.len() / (rows * 3);
    let (d, w) = (hidden / nh, 3 * hidden);
    let scale = T::from_f64(1.0 / (d as f64).sqrt());
    let spans = sh.spans();
    let from = offsets(spans.iter().map(|&(r, _)| r));
    let probs_at = offsets(spans.iter().map(|&(r, len)| nh * r * len));
    split_sizes(dqkv, spans.iter().map(|&(r, _)| r * w))
        .into_par_iter()
        .zip(from)
        .zip(probs_at)
        .zip(spans)
        .filter(|(_, (r, _))| *r > 0)
        .for_each(|(((dx, at), pat), (s, len))| {
            let x = &qkv[at * w..(at + s) * w];
            let dy = &dout[at * hidden..(at + s) * hidden];
            wide(
                #[inline(always)]
                || {
                    // Padded keys get no gradient; the matmuls below write only the valid rows.
                    for row in dx.chunks_exact_mut(w).skip(len) {
                        row[hidden..].fill(T::ZERO);
                    }
                    let mut fresh = vec![T::ZERO; if kept.is_some() { 0 } else { s * len }];
                    let mut dp = vec![T::ZERO; s * len];
                    for h in 0..nh {
                        let c = h * d;
                        // SAFETY: as in the forward pass, every block lies inside its slice.
                        unsafe {
                            let p: &[T] = match kept {
                                Some(k) => &k[pat + h * s * len..][..s * len],
                                None => {
                                    probabilities(x, s, len, hidden, c, d, &mut fresh);
                                    &fresh
                                }
                            };
                            let (q, k, v) = (
                                x.as_ptr().add(c),
                                x.as_ptr().add(hidden + c),
                                x.as_ptr().add(2 * hidden + c),
                            );
                            let dyh = dy.as_ptr().add(c);
                            // dV = Pᵀ dO
                            matmul(
                                (len, d, s),
                                dx.as_mut_ptr().add(2 * hidden + c),
                                w,
                                p.as_ptr(),
                                (1, len),
                                dyh,
                                (hidden, 1),
                                T::ONE,
                            );
                            // dP = dO Vᵀ, then dS = softmax backward
                            matmul(
                                (s, len, d),
                                dp.as_mut_ptr(),
                                len,
                                dyh,
                                (hidden, 1),
                                v,
                                (1, w),
                                T::ONE,
                            );
                            for (pr, dr) in p.chunks_exact(len).zip(dp.chunks_exact_mut(len)) {
                                softmax_row_backward(pr, dr);
                            }
                            // dQ = scale · dS K ; dK = scale · dSᵀ Q
                            matmul(
                                (s, d, len),
                                dx.as_mut_ptr().add(c),
                                w,
                                dp.as_ptr(),
                                (len, 1),
                                k,
                                (w, 1),
                                scale,
                            );
                            matmul(
                                (len, d, s),
                                dx.as_mut_ptr().add(hidden + c),
                                w,
                                dp.as_ptr(),
                                (1, len),
                                q,
                                (w, 1),
                                scale,
                            );
                        }
                    }
                },
            )
        });
}

impl CustomOp2 for AttentionBackward {
    fn name(&self) -> &'static str {
        "fused-attention-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let out = float_kernel!(name, [s1, l1 => x, s2, l2 => g], backward(x, g, &self.shape));
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gradcheck::{check, max_abs_diff, randn};
    use candle_core::DType;

    fn shape(lengths: &[usize], seq: usize, heads: usize) -> AttentionShape {
        AttentionShape::padded(lengths, seq, heads)
    }

    /// The valid rows of a padded `[batch·seq, w]` tensor, packed back to back.
    fn valid_rows(t: &Tensor, lengths: &[usize], seq: usize) -> Tensor {
        let parts: Vec<Tensor> = lengths
            .iter()
            .enumerate()
            .filter(|(_, &l)| l > 0)
            .map(|(i, &l)| t.narrow(0, i * seq, l).unwrap())
            .collect();
        Tensor::cat(&parts, 0).unwrap()
    }

    #[test]
    fn packed_rows_match_the_valid_rows_of_padded_ones() {
        let lengths = [5, 2, 0, 7];
        let (padded, packed) = (shape(&lengths, 7, 2), AttentionShape::packed(&lengths, 2));
        let qkv = randn(&[28, 3 * 8], 7, 2.0);
        let x = valid_rows(&qkv, &lengths, 7);
        assert_eq!(x.dim(0).unwrap(), packed.rows());
        let a = attention(&x, &packed, Kernels::Fused).unwrap();
        let b = valid_rows(
            &attention(&qkv, &padded, Kernels::Fused).unwrap(),
            &lengths,
            7,
        );
        assert!(max_abs_diff(&a, &b) < 1e-12);
        // The gradients agree too: the padded rows' loss terms are left out of both.
        let w = randn(&[x.dim(0).unwrap(), 8], 8, 1.0);
        let (xv, qv) = (
            candle_core::Var::from_tensor(&x).unwrap(),
            candle_core::Var::from_tensor(&qkv).unwrap(),
        );
        let ga = attention(xv.as_tensor(), &packed, Kernels::Fused)
            .unwrap()
            .mul(&w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let out = attention(qv.as_tensor(), &padded, Kernels::Fused).unwrap();
        let gb = valid_rows(&out, &lengths, 7)
            .mul(&w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let da = ga.get(xv.as_tensor()).unwrap();
        let db = valid_rows(gb.get(qv.as_tensor()).unwrap(), &lengths, 7);
        assert!(max_abs_diff(da, &db) < 1e-12);
    }

    #[test]
    fn a_shape_that_does_not_fit_is_an_error() {
        let sh = AttentionShape::packed(&[3, 2], 2);
        let err = attention(&randn(&[6, 12], 1, 1.0), &sh, Kernels::Fused).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        assert!(attention_composed(&randn(&[5, 12], 1, 1.0), &sh).is_err());
    }

    #[test]
    fn fused_matches_composed_with_padding() {
        let sh = shape(&[5, 2, 7], 7, 2);
        let qkv = randn(&[21, 3 * 8], 1, 2.0);
        let a = attention(&qkv, &sh, Kernels::Fused).unwrap();
        let c = attention_composed(&qkv, &sh).unwrap();
        let diff = max_abs_diff(&a, &c);
        assert!(diff < 1e-12, "{diff}");
    }

    #[test]
    fn padded_keys_do_not_matter() {
        let sh = shape(&[3], 5, 2);
        let qkv = randn(&[5, 12], 2, 1.0);
        let a = attention(&qkv, &sh, Kernels::Fused).unwrap();
        let other =
            Tensor::cat(&[qkv.narrow(0, 0, 3).unwrap(), randn(&[2, 12], 3, 9.0)], 0).unwrap();
        let b = attention(&other, &sh, Kernels::Fused).unwrap();
        let diff = max_abs_diff(&a.narrow(0, 0, 3).unwrap(), &b.narrow(0, 0, 3).unwrap());
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn finite_differences_padded_and_packed() {
        for sh in [shape(&[4, 2], 4, 2), AttentionShape::packed(&[3, 1, 2], 2)] {
            check(
                &[randn(&[sh.rows(), 12], 4, 1.5)],
                |t| attention(&t[0], &sh, Kernels::Fused),
                1e-7,
            );
        }
    }

    #[test]
    fn composed_finite_differences() {
        let sh = shape(&[3, 1], 3, 2);
        check(
            &[randn(&[6, 12], 5, 1.5)],
            |t| attention(&t[0], &sh, Kernels::Composed),
            1e-7,
        );
    }

    #[test]
    fn f32_matches_f64() {
        let sh = shape(&[9, 16], 16, 4);
        let qkv = randn(&[32, 3 * 32], 6, 1.0);
        let a = attention(&qkv, &sh, Kernels::Fused).unwrap();
        let b = attention(&qkv.to_dtype(DType::F32).unwrap(), &sh, Kernels::Fused)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        let diff = max_abs_diff(&a, &b);
        assert!(diff < 1e-5, "{diff}");
    }
}
