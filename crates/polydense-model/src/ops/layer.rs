//! A whole post-LN transformer layer (BERT, XLM-R) as one op, with its backward pass.
//!
//! candle's autograd gives each node of the graph its own gradient tensor: it allocates a zero
//! tensor for it and adds the incoming gradient into it (`GradStore::or_insert` then `add`, in
//! candle-core's backprop.rs), and a layer built from candle ops has a dozen full-size nodes
//! (bias adds, residual adds, transposes, the projections). On CPU those fresh buffers and
//! passes cost as much as the matmuls. As one op the layer's backward is written out here:
//! biases and residuals are added by pre-filling the matmul outputs, bias gradients are column
//! sums taken inside the layer-norm and GELU backward passes, the weight gradients are written
//! straight into one packed buffer, and the op keeps the few activations its backward pass
//! needs (recomputing the cheap ones: the first norm's output and the GELU).
//!
//! The parameters travel as one packed vector (see [`pack`]): a custom op has at most three
//! inputs, and candle routes the packed gradient back to each weight through the `cat`.

use std::ops::Range;
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::attention::{self, AttentionShape};
use super::gelu::gelu_and_grad;
use super::layer_norm;
use super::linear::{grad_input, grad_weight, linear_acc};
use super::scratch::{Buf, Pooled};
use super::{rows_per_task, wide, Real};
use crate::config::Activation;

/// The sizes and constants of one post-LN layer.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// Hidden width `h`.
    pub hidden: usize,
    /// Feed-forward width `i`.
    pub intermediate: usize,
    /// Layer-norm ε.
    pub eps: f64,
    /// The feed-forward activation.
    pub act: Activation,
    /// Batch, sequence, heads and valid lengths for the attention.
    pub shape: AttentionShape,
}

/// Where each parameter lies in the packed vector, in the order [`pack`] takes them.
#[derive(Debug, Clone)]
struct Offsets {
    qkv_w: Range<usize>,
    qkv_b: Range<usize>,
    out_w: Range<usize>,
    out_b: Range<usize>,
    norm1_g: Range<usize>,
    norm1_b: Range<usize>,
    inter_w: Range<usize>,
    inter_b: Range<usize>,
    ffn_w: Range<usize>,
    ffn_b: Range<usize>,
    norm2_g: Range<usize>,
    norm2_b: Range<usize>,
    len: usize,
}

impl Offsets {
    fn new(h: usize, i: usize) -> Self {
        let mut at = 0;
        let mut next = |n: usize| {
            at += n;
            at - n..at
        };
        let o = Offsets {
            qkv_w: next(3 * h * h),
            qkv_b: next(3 * h),
            out_w: next(h * h),
            out_b: next(h),
            norm1_g: next(h),
            norm1_b: next(h),
            inter_w: next(i * h),
            inter_b: next(i),
            ffn_w: next(h * i),
            ffn_b: next(h),
            norm2_g: next(h),
            norm2_b: next(h),
            len: 0,
        };
        Offsets { len: at, ..o }
    }
}

/// Packs a layer's parameters, differentiably, in the order the fused layer reads them:
/// query, key and value weights (`[h, h]` each, stacked into `[3h, h]`), their biases, the
/// attention output dense weight and bias, its LayerNorm γ and β, the intermediate dense
/// weight `[i, h]` and bias, the output dense weight `[h, i]` and bias, its LayerNorm γ and β.
pub fn pack(parts: &[&Tensor; 16]) -> Result<Tensor> {
    let flat = parts
        .iter()
        .map(|t| t.flatten_all())
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&flat, 0)
}

/// The layer `LN(f + FFN(f))` with `f = LN(x + Attn(x))`, on `x = [batch·seq, h]`, with the
/// parameters packed by [`pack`]; differentiable in `x` and in every parameter.
pub fn dense_layer(x: &Tensor, packed: &Tensor, spec: &LayerSpec) -> Result<Tensor> {
    let save = x.track_op() || packed.track_op();
    x.contiguous()?.apply_op2(
        &packed.contiguous()?,
        DenseLayer {
            spec: spec.clone(),
            offsets: Offsets::new(spec.hidden, spec.intermediate),
            save,
            saved: Mutex::new(None),
        },
    )
}

struct DenseLayer {
    spec: LayerSpec,
    offsets: Offsets,
    /// Whether a backward pass can follow (some input tracks gradients).
    save: bool,
    /// The activations of the last forward pass, taken by the backward pass.
    saved: Mutex<Option<Saved>>,
}

/// What the backward pass needs from the forward pass, besides the op's inputs.
struct Acts<T: Pooled> {
    /// The projected `[n, 3h]` queries, keys and values (with bias).
    qkv: Buf<T>,
    /// The attention context `[n, h]`.
    ctx: Buf<T>,
    /// The input of the first norm, `x + ctx·Woᵀ + bo`.
    a: Buf<T>,
    /// The input of the activation, `[n, i]`.
    u: Buf<T>,
    /// The input of the second norm.
    f: Buf<T>,
    /// The attention probabilities (see [`attention::probs_len`]), kept when a backward pass
    /// follows so it need not recompute them.
    probs: Option<Buf<T>>,
}

enum Saved {
    F32(Acts<f32>),
    F64(Acts<f64>),
}

/// The float types the layer runs in, with their CPU storage and saved activations.
trait Elem: Real + Pooled + candle_core::WithDType {
    fn host(s: &CpuStorage) -> Option<&[Self]>;
    fn save(a: Acts<Self>) -> Saved;
    fn take(s: Saved) -> Option<Acts<Self>>;
}

impl Elem for f32 {
    fn host(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn save(a: Acts<Self>) -> Saved {
        Saved::F32(a)
    }
    fn take(s: Saved) -> Option<Acts<Self>> {
        match s {
            Saved::F32(a) => Some(a),
            Saved::F64(_) => None,
        }
    }
}

impl Elem for f64 {
    fn host(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn save(a: Acts<Self>) -> Saved {
        Saved::F64(a)
    }
    fn take(s: Saved) -> Option<Acts<Self>> {
        match s {
            Saved::F64(a) => Some(a),
            Saved::F32(_) => None,
        }
    }
}

/// Rows of `bias`, plus `base` row by row when given, written over `out`: a matmul output
/// pre-filled with its bias (and residual), so the matmul accumulates into it and no add
/// pass follows.
fn prefill<T: Real>(out: &mut [T], bias: &[T], base: Option<&[T]>) {
    let w = bias.len();
    let chunk = rows_per_task(out.len() / w, w) * w;
    out.par_chunks_mut(chunk).enumerate().for_each(|(c, oc)| {
        for (r, row) in oc.chunks_exact_mut(w).enumerate() {
            match base {
                Some(b) => {
                    let src = &b[c * chunk + r * w..][..w];
                    for j in 0..w {
                        row[j] = src[j] + bias[j];
                    }
                }
                None => row.copy_from_slice(bias),
            }
        }
    });
}

/// Σ over rows of a `[rows, w]` matrix.
fn col_sums<T: Real>(x: &[T], w: usize) -> Vec<T> {
    let chunk = rows_per_task(x.len() / w, w) * w;
    x.par_chunks(chunk)
        .map(|c| {
            let mut s = vec![T::ZERO; w];
            for row in c.chunks_exact(w) {
                for j in 0..w {
                    s[j] += row[j];
                }
            }
            s
        })
        .reduce(
            || vec![T::ZERO; w],
            |mut a, b| {
                for j in 0..w {
                    a[j] += b[j];
                }
                a
            },
        )
}

/// `g = act(u)` elementwise.
fn activate<T: Real>(u: &[T], act: Activation, g: &mut [T]) {
    // One loop per activation, so each is branch-free and vectorises.
    fn run<T: Real>(u: &[T], g: &mut [T], f: impl Fn(T) -> T + Sync) {
        g.par_chunks_mut(16 * 1024)
            .zip(u.par_chunks(16 * 1024))
            .for_each(|(gc, uc)| {
                wide(
                    #[inline(always)]
                    || {
                        for (g, &u) in gc.iter_mut().zip(uc) {
                            *g = f(u);
                        }
                    },
                )
            });
    }
    match act {
        Activation::GeluErf => run(u, g, |u| gelu_and_grad(u, Activation::GeluErf).0),
        Activation::GeluTanh => run(u, g, |u| gelu_and_grad(u, Activation::GeluTanh).0),
    }
}

/// In place: `dg` (rows of width `w`) becomes `dg ⊙ act'(u)`; returns its column sums (the
/// gradient of the bias inside `u`).
fn activation_backward<T: Real>(u: &[T], dg: &mut [T], w: usize, act: Activation) -> Vec<T> {
    fn run<T: Real>(u: &[T], dg: &mut [T], w: usize, f: impl Fn(T) -> T + Sync) -> Vec<T> {
        let chunk = rows_per_task(u.len() / w, w) * w;
        dg.par_chunks_mut(chunk)
            .zip(u.par_chunks(chunk))
            .map(|(dc, uc)| {
                wide(
                    #[inline(always)]
                    || {
                        let mut s = vec![T::ZERO; w];
                        for (dr, ur) in dc.chunks_exact_mut(w).zip(uc.chunks_exact(w)) {
                            for ((d, &u), s) in dr.iter_mut().zip(ur).zip(s.iter_mut()) {
                                *d = *d * f(u);
                                *s += *d;
                            }
                        }
                        s
                    },
                )
            })
            .reduce(
                || vec![T::ZERO; w],
                |mut a, b| {
                    for j in 0..w {
                        a[j] += b[j];
                    }
                    a
                },
            )
    }
    match act {
        Activation::GeluErf => run(u, dg, w, |u| gelu_and_grad(u, Activation::GeluErf).1),
        Activation::GeluTanh => run(u, dg, w, |u| gelu_and_grad(u, Activation::GeluTanh).1),
    }
}

impl DenseLayer {
    fn forward<T: Elem>(&self, x: &[T], p: &[T], keep_probs: bool) -> (Vec<T>, Acts<T>) {
        let (h, i, o) = (self.spec.hidden, self.spec.intermediate, &self.offsets);
        let (eps, act) = (self.spec.eps, self.spec.act);
        let n = x.len() / h;
        let mut qkv = Buf::uninit(n * 3 * h);
        prefill(&mut qkv, &p[o.qkv_b.clone()], None);
        linear_acc(x, &p[o.qkv_w.clone()], h, 3 * h, &mut qkv);
        let mut ctx = Buf::uninit(n * h);
        let mut probs = keep_probs.then(|| Buf::uninit(attention::probs_len(&self.spec.shape)));
        attention::forward_into(&qkv, &self.spec.shape, &mut ctx, probs.as_deref_mut());
        let mut a = Buf::uninit(n * h);
        prefill(&mut a, &p[o.out_b.clone()], Some(x));
        linear_acc(&ctx, &p[o.out_w.clone()], h, h, &mut a);
        let mut h1 = Buf::uninit(n * h);
        let (g1, b1) = (&p[o.norm1_g.clone()], &p[o.norm1_b.clone()]);
        layer_norm::forward_into(&a, g1, b1, eps, &mut h1);
        let mut u = Buf::uninit(n * i);
        prefill(&mut u, &p[o.inter_b.clone()], None);
        linear_acc(&h1, &p[o.inter_w.clone()], h, i, &mut u);
        let mut g = Buf::uninit(n * i);
        activate(&u, act, &mut g);
        let mut f = Buf::uninit(n * h);
        prefill(&mut f, &p[o.ffn_b.clone()], Some(&h1));
        linear_acc(&g, &p[o.ffn_w.clone()], i, h, &mut f);
        drop((g, h1));
        let mut y = vec![T::ZERO; n * h];
        let (g2, b2) = (&p[o.norm2_g.clone()], &p[o.norm2_b.clone()]);
        layer_norm::forward_into(&f, g2, b2, eps, &mut y);
        (
            y,
            Acts {
                qkv,
                ctx,
                a,
                u,
                f,
                probs,
            },
        )
    }

    /// `(dx, dpacked)` from the upstream gradient `dy`.
    fn backward<T: Elem>(&self, x: &[T], p: &[T], dy: &[T], acts: Acts<T>) -> (Vec<T>, Vec<T>) {
        let (h, i, o) = (self.spec.hidden, self.spec.intermediate, &self.offsets);
        let (eps, act) = (self.spec.eps, self.spec.act);
        let n = x.len() / h;
        let Acts {
            qkv,
            ctx,
            a,
            u,
            f,
            probs,
        } = acts;
        let mut dp = vec![T::ZERO; p.len()];
        // Second norm; Σ df is the output dense bias's gradient.
        let mut df = Buf::uninit(n * h);
        let g2 = layer_norm::backward_into(&f, &p[o.norm2_g.clone()], dy, eps, &mut df);
        drop(f);
        dp[o.norm2_g.clone()].copy_from_slice(&g2.gamma);
        dp[o.norm2_b.clone()].copy_from_slice(&g2.beta);
        dp[o.ffn_b.clone()].copy_from_slice(&g2.dx_sum);
        // Feed-forward, recomputing the first norm's output and the activation.
        let mut h1 = Buf::uninit(n * h);
        let (g1, b1) = (&p[o.norm1_g.clone()], &p[o.norm1_b.clone()]);
        layer_norm::forward_into(&a, g1, b1, eps, &mut h1);
        let mut buf = Buf::uninit(n * i);
        activate(&u, act, &mut buf);
        grad_weight(&df, &buf, h, i, &mut dp[o.ffn_w.clone()]);
        grad_input(&df, &p[o.ffn_w.clone()], h, i, &mut buf, false);
        let db1 = activation_backward(&u, &mut buf, i, act);
        drop(u);
        dp[o.inter_b.clone()].copy_from_slice(&db1);
        grad_weight(&buf, &h1, i, h, &mut dp[o.inter_w.clone()]);
        drop(h1);
        let mut dh1 = df; // the residual path
        grad_input(&buf, &p[o.inter_w.clone()], i, h, &mut dh1, true);
        drop(buf);
        // First norm; Σ da is the attention output bias's gradient. `da` becomes dx (the
        // residual path), so it is the one buffer handed over to candle.
        let mut da = vec![T::ZERO; n * h];
        let g1 = layer_norm::backward_into(&a, &p[o.norm1_g.clone()], &dh1, eps, &mut da);
        drop((a, dh1));
        dp[o.norm1_g.clone()].copy_from_slice(&g1.gamma);
        dp[o.norm1_b.clone()].copy_from_slice(&g1.beta);
        dp[o.out_b.clone()].copy_from_slice(&g1.dx_sum);
        // Attention.
        grad_weight(&da, &ctx, h, h, &mut dp[o.out_w.clone()]);
        let mut dctx = ctx;
        grad_input(&da, &p[o.out_w.clone()], h, h, &mut dctx, false);
        let mut dqkv = Buf::uninit(n * 3 * h);
        attention::backward_into(&qkv, &dctx, &self.spec.shape, &mut dqkv, probs.as_deref());
        drop((qkv, dctx, probs));
        dp[o.qkv_b.clone()].copy_from_slice(&col_sums(&dqkv, 3 * h));
        grad_weight(&dqkv, x, 3 * h, h, &mut dp[o.qkv_w.clone()]);
        let mut dx = da;
        grad_input(&dqkv, &p[o.qkv_w.clone()], 3 * h, h, &mut dx, true);
        (dx, dp)
    }

    fn run<T: Elem>(&self, x: &[T], p: &[T]) -> Vec<T> {
        let (y, acts) = self.forward(x, p, self.save);
        if self.save {
            *self.saved.lock().expect("saved activations lock") = Some(T::save(acts));
        }
        y
    }

    fn backward_tensors<T: Elem>(
        &self,
        x: &Tensor,
        p: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let (xs, xl) = x.storage_and_layout();
        let (ps, pl) = p.storage_and_layout();
        let (gs, gl) = dy.storage_and_layout();
        let (xv, pv, gv) = (
            host::<T>(&xs, xl, name)?,
            host::<T>(&ps, pl, name)?,
            host::<T>(&gs, gl, name)?,
        );
        let saved = self.saved.lock().expect("saved activations lock").take();
        // A second backward pass over the same graph finds nothing saved: recompute.
        let acts = match saved.and_then(T::take) {
            Some(a) => a,
            None => self.forward(xv, pv, true).1,
        };
        let (dx, dp) = self.backward(xv, pv, gv, acts);
        drop((xs, ps, gs));
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dp, p.shape(), p.device())?),
        ))
    }
}

/// The contiguous host data of a tensor of element type `T`.
fn host<'a, T: Elem>(s: &'a Storage, l: &Layout, op: &str) -> Result<&'a [T]> {
    match s {
        Storage::Cpu(c) => match T::host(c) {
            Some(v) => super::slice(v, l, op),
            None => Err(super::unsupported(op, c)),
        },
        #[allow(unreachable_patterns)]
        _ => candle_core::bail!("{op}: CPU tensors only"),
    }
}

impl CustomOp2 for DenseLayer {
    fn name(&self) -> &'static str {
        "fused-dense-layer"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (rows, h) = l1.shape().dims2()?;
        let sh = &self.spec.shape;
        if h != self.spec.hidden || !sh.fits(rows, h) || l2.shape().elem_count() != self.offsets.len
        {
            candle_core::bail!(
                "{name}: input {:?} and {} parameters do not fit {:?}",
                l1.dims(),
                l2.shape().elem_count(),
                self.spec
            );
        }
        let out = float_kernel!(name, [s1, l1 => x, s2, l2 => p], self.run(x, p));
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        packed: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = grad.contiguous()?;
        match x.dtype() {
            DType::F32 => self.backward_tensors::<f32>(x, packed, &dy),
            DType::F64 => self.backward_tensors::<f64>(x, packed, &dy),
            d => candle_core::bail!("{}: dtype {d:?} not supported", self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::attention::attention_composed;
    use crate::ops::gelu::bias_gelu_composed;
    use crate::ops::gradcheck::{check, max_abs_diff, randn};
    use crate::ops::layer_norm::layer_norm_composed;

    fn spec(lengths: &[usize], seq: usize, act: Activation) -> LayerSpec {
        LayerSpec {
            hidden: 8,
            intermediate: 12,
            eps: 1e-5,
            act,
            shape: AttentionShape::padded(lengths, seq, 2),
        }
    }

    /// The same layer from plain candle ops on slices of the packed vector.
    fn composed(x: &Tensor, p: &Tensor, s: &LayerSpec) -> Result<Tensor> {
        let (h, i) = (s.hidden, s.intermediate);
        let o = Offsets::new(h, i);
        let get = |r: Range<usize>, dims: &[usize]| p.narrow(0, r.start, r.len())?.reshape(dims);
        let linear = |x: &Tensor, w: Range<usize>, b: Range<usize>, out: usize, inp: usize| {
            x.matmul(&get(w, &[out, inp])?.t()?)?
                .broadcast_add(&get(b, &[out])?)
        };
        let qkv = linear(x, o.qkv_w.clone(), o.qkv_b.clone(), 3 * h, h)?;
        let ctx = attention_composed(&qkv, &s.shape)?;
        let a = (linear(&ctx, o.out_w.clone(), o.out_b.clone(), h, h)? + x)?;
        let h1 = layer_norm_composed(&a, &get(o.norm1_g, &[h])?, &get(o.norm1_b, &[h])?, s.eps)?;
        let g = bias_gelu_composed(
            &h1.matmul(&get(o.inter_w, &[i, h])?.t()?)?,
            &get(o.inter_b, &[i])?,
            s.act,
        )?;
        let f = (linear(&g, o.ffn_w, o.ffn_b, h, i)? + &h1)?;
        layer_norm_composed(&f, &get(o.norm2_g, &[h])?, &get(o.norm2_b, &[h])?, s.eps)
    }

    fn params(seed: u64) -> Tensor {
        let o = Offsets::new(8, 12);
        let p = randn(&[o.len], seed, 0.5);
        // γ near 1, so the norms do not squash the signal.
        let ones = Tensor::ones(o.len, DType::F64, p.device()).unwrap();
        let mask: Vec<f64> = (0..o.len)
            .map(|j| (o.norm1_g.contains(&j) || o.norm2_g.contains(&j)) as u8 as f64)
            .collect();
        let mask = Tensor::from_vec(mask, o.len, p.device()).unwrap();
        (p + (ones * mask).unwrap()).unwrap()
    }

    #[test]
    fn fused_matches_composed_with_padding() {
        for act in [Activation::GeluErf, Activation::GeluTanh] {
            let s = spec(&[3, 1, 4], 4, act);
            let x = randn(&[12, 8], 1, 1.5);
            let p = params(2);
            let diff = max_abs_diff(
                &dense_layer(&x, &p, &s).unwrap(),
                &composed(&x, &p, &s).unwrap(),
            );
            assert!(diff < 1e-12, "{act:?}: {diff}");
        }
    }

    #[test]
    fn finite_differences() {
        for act in [Activation::GeluErf, Activation::GeluTanh] {
            let s = spec(&[3, 2], 3, act);
            check(
                &[randn(&[6, 8], 3, 1.5), params(4)],
                |t| dense_layer(&t[0], &t[1], &s),
                1e-6,
            );
        }
    }

    #[test]
    fn gradients_match_composed_and_survive_a_second_backward() {
        let s = spec(&[4, 2], 4, Activation::GeluErf);
        let x = candle_core::Var::from_tensor(&randn(&[8, 8], 5, 1.0)).unwrap();
        let p = candle_core::Var::from_tensor(&params(6)).unwrap();
        let w = randn(&[8, 8], 7, 1.0);
        let loss = |y: Tensor| (y * &w).unwrap().sum_all().unwrap();
        let fused = loss(dense_layer(&x, &p, &s).unwrap());
        let reference = loss(composed(&x, &p, &s).unwrap()).backward().unwrap();
        // The second pass finds no saved activations and recomputes them.
        for _ in 0..2 {
            let g = fused.backward().unwrap();
            for v in [&x, &p] {
                let diff = max_abs_diff(g.get(v).unwrap(), reference.get(v).unwrap());
                assert!(diff < 1e-12, "{diff}");
            }
        }
    }

    #[test]
    fn packed_rows_give_the_valid_rows_of_the_padded_layer() {
        let lengths = [3, 1, 4];
        let padded = spec(&lengths, 4, Activation::GeluErf);
        let packed = LayerSpec {
            shape: AttentionShape::packed(&lengths, 2),
            ..padded.clone()
        };
        let (x, p) = (randn(&[12, 8], 10, 1.5), params(11));
        let valid = |t: &Tensor| {
            let rows: Vec<Tensor> = lengths
                .iter()
                .enumerate()
                .map(|(i, &l)| t.narrow(0, i * 4, l).unwrap())
                .collect();
            Tensor::cat(&rows, 0).unwrap()
        };
        let a = dense_layer(&valid(&x), &p, &packed).unwrap();
        let b = valid(&dense_layer(&x, &p, &padded).unwrap());
        let diff = max_abs_diff(&a, &b);
        assert!(diff < 1e-12, "{diff}");
        check(
            &[randn(&[8, 8], 12, 1.5), params(13)],
            |t| dense_layer(&t[0], &t[1], &packed),
            1e-6,
        );
    }

    #[test]
    fn f32_matches_f64() {
        let s = spec(&[5, 3], 5, Activation::GeluErf);
        let (x, p) = (randn(&[10, 8], 8, 1.0), params(9));
        let a = dense_layer(&x, &p, &s).unwrap();
        let b = dense_layer(
            &x.to_dtype(DType::F32).unwrap(),
            &p.to_dtype(DType::F32).unwrap(),
            &s,
        )
        .unwrap();
        let diff = max_abs_diff(&a, &b);
        assert!(diff < 1e-4, "{diff}");
    }
}
