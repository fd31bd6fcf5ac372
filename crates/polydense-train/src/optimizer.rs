//! [`AdamW`] (Loshchilov and Hutter 2019) with state we can checkpoint, global-norm gradient
//! clipping, and the linear warm-up/decay schedule.
//!
//! Hand-written because candle-nn's `AdamW` keeps its moment estimates private: a checkpoint
//! could not store them, and `--resume` could not continue the same trajectory.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use rayon::prelude::*;

use crate::error::{Result, TrainError};

/// The hyper-parameters of AdamW other than the learning rate (which the schedule sets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to √v̂ in the denominator.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// Gradients copied to host memory as f32, once per step: the norm, the clipping and the
/// update then read them in fused parallel loops instead of a dozen tensor passes each
/// (the multilingual embedding table alone is 96M values in e5-small).
#[derive(Debug)]
pub struct HostGrads(Vec<Vec<f32>>);

impl HostGrads {
    /// Copies the gradients (any float dtype, any device) to host f32.
    pub fn new(grads: &[Tensor]) -> Result<Self> {
        grads
            .iter()
            .map(|g| Ok(g.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?))
            .collect::<Result<_>>()
            .map(HostGrads)
    }

    /// The global L2 norm, accumulated in f64.
    pub fn norm(&self) -> f64 {
        self.0
            .iter()
            .map(|g| g.par_iter().map(|&x| x as f64 * x as f64).sum::<f64>())
            .sum::<f64>()
            .sqrt()
    }
}

/// The factor that brings a gradient of norm `norm` to at most `max_norm` (PyTorch's
/// `clip_grad_norm_`, with its 1e-6 guard); 1 when `max_norm` is 0 (no clipping).
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    match max_norm > 0.0 && norm.is_finite() {
        true => (max_norm / (norm + 1e-6)).min(1.0),
        false => 1.0,
    }
}

/// AdamW over named variables, updating them in place, with PyTorch's bias correction.
/// Biases and LayerNorm weights get no weight decay, as sentence-transformers' `fit` and the
/// HF Trainer exclude them. The moments live in host memory as f32 and the update is one
/// fused parallel loop per weight. Each weight counts its own updates (as PyTorch's per-
/// parameter `step`), so a weight that starts training at a resume (a new stage of
/// sequential training) gets the bias correction of its own first step.
#[derive(Debug)]
pub struct AdamW {
    params: Vec<(String, Var)>,
    decay: Vec<bool>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    steps: Vec<u64>,
    config: AdamWConfig,
}

impl AdamW {
    /// Zero moments for every parameter.
    pub fn new(params: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        let zeros: Vec<Vec<f32>> = params
            .iter()
            .map(|(_, v)| vec![0f32; v.elem_count()])
            .collect();
        let decay = params
            .iter()
            .map(|(n, _)| !(n.ends_with(".bias") || n.contains("LayerNorm")))
            .collect();
        Ok(AdamW {
            steps: vec![0; params.len()],
            params,
            decay,
            m: zeros.clone(),
            v: zeros,
            config,
        })
    }

    /// The optimised variables, in the order [`AdamW::step`] expects their gradients.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Updates taken so far (by the weight that has taken the most).
    pub fn steps(&self) -> u64 {
        self.steps.iter().copied().max().unwrap_or(0)
    }

    /// One update with learning rate `lr` and the gradients multiplied by `scale` (the
    /// clipping factor); `grads` follow the order of `params()`.
    pub fn step(&mut self, grads: &HostGrads, lr: f64, scale: f64) -> Result<()> {
        let c = self.config;
        for (i, (_, var)) in self.params.iter().enumerate() {
            self.steps[i] += 1;
            let t = self.steps[i] as i32;
            let rule = Rule {
                b1: c.beta1 as f32,
                b2: c.beta2 as f32,
                bc1: (1.0 - c.beta1.powi(t)) as f32,
                bc2_sqrt: (1.0 - c.beta2.powi(t)).sqrt() as f32,
                lr: lr as f32,
                eps: c.eps as f32,
                scale: scale as f32,
                keep: match self.decay[i] {
                    true => (1.0 - lr * c.weight_decay) as f32,
                    false => 1.0,
                },
            };
            let (m, v, g) = (&mut self.m[i], &mut self.v[i], &grads.0[i]);
            let p = var.as_tensor();
            if p.device().is_cpu() && p.dtype() == DType::F32 {
                // In place: no copy of the weights out and back (two passes over 90 MB a step
                // for MiniLM).
                p.inplace_op1(&InPlace {
                    rule,
                    state: std::sync::Mutex::new((m, v, g)),
                })?;
            } else {
                let mut w = p.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                rule.apply(&mut w, m, v, g);
                let next = Tensor::from_vec(w, p.shape(), p.device())?.to_dtype(p.dtype())?;
                var.set(&next)?;
            }
        }
        Ok(())
    }

    /// The moments and update counts as named tensors (`m.NAME`, `v.NAME`, `t.NAME`) for a
    /// checkpoint.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, (name, var)) in self.params.iter().enumerate() {
            let shape = var.as_tensor().shape();
            out.insert(
                format!("m.{name}"),
                Tensor::from_slice(&self.m[i], shape, &Device::Cpu)?,
            );
            out.insert(
                format!("v.{name}"),
                Tensor::from_slice(&self.v[i], shape, &Device::Cpu)?,
            );
            out.insert(
                format!("t.{name}"),
                Tensor::new(self.steps[i] as i64, &Device::Cpu)?,
            );
        }
        Ok(out)
    }

    /// Restores moments and update counts from a checkpoint, returning the names of the
    /// weights the checkpoint has no state for: weights that were frozen when it was written
    /// and train now, which start from zero moments. Checkpoints from before per-weight counts
    /// take `steps` (the run's step) as every weight's count.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, steps: u64) -> Result<Vec<String>> {
        let mut fresh = Vec::new();
        for (i, (name, var)) in self.params.iter().enumerate() {
            if !state.contains_key(&format!("m.{name}")) {
                self.m[i].fill(0.0);
                self.v[i].fill(0.0);
                self.steps[i] = 0;
                fresh.push(name.clone());
                continue;
            }
            let get = |key: String| -> Result<Vec<f32>> {
                let t = state.get(&key).ok_or_else(|| {
                    TrainError::config("resume", format!("optimizer state lacks `{key}`"))
                })?;
                if t.elem_count() != var.elem_count() {
                    return Err(TrainError::config(
                        "resume",
                        format!("optimizer state `{key}` has the wrong size"),
                    ));
                }
                Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
            };
            self.m[i] = get(format!("m.{name}"))?;
            self.v[i] = get(format!("v.{name}"))?;
            self.steps[i] = match state.get(&format!("t.{name}")) {
                Some(t) => t.to_dtype(DType::I64)?.to_scalar::<i64>()?.max(0) as u64,
                None => steps,
            };
        }
        Ok(fresh)
    }
}

/// The learning rate for the step after `done` completed steps: linear warm-up from 0 over
/// `warmup` steps, then linear decay to 0 at `total` (the HF `get_linear_schedule_with_warmup`
/// One AdamW update's constants.
#[derive(Debug, Clone, Copy)]
struct Rule {
    b1: f32,
    b2: f32,
    bc1: f32,
    bc2_sqrt: f32,
    lr: f32,
    eps: f32,
    scale: f32,
    /// 1 − lr·weight_decay for decayed weights, else 1.
    keep: f32,
}

impl Rule {
    /// The update of weights `w` and moments `m`, `v` from gradients `g`, in one parallel pass.
    fn apply(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let r = *self;
        w.par_iter_mut()
            .zip(m.par_iter_mut())
            .zip(v.par_iter_mut())
            .zip(g.par_iter())
            .for_each(|(((w, m), v), &g)| {
                let g = g * r.scale;
                *m = r.b1 * *m + (1.0 - r.b1) * g;
                *v = r.b2 * *v + (1.0 - r.b2) * g * g;
                let update = (*m / r.bc1) / ((*v).sqrt() / r.bc2_sqrt + r.eps);
                *w = *w * r.keep - r.lr * update;
            });
    }
}

/// [`Rule::apply`] on a CPU f32 weight's own storage.
struct InPlace<'a> {
    rule: Rule,
    state: std::sync::Mutex<(&'a mut Vec<f32>, &'a mut Vec<f32>, &'a Vec<f32>)>,
}

impl candle_core::InplaceOp1 for InPlace<'_> {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let candle_core::CpuStorage::F32(all) = storage else {
            candle_core::bail!("adamw-update: f32 weights only");
        };
        let Some((from, to)) = layout.contiguous_offsets() else {
            candle_core::bail!("adamw-update: the weight is not contiguous");
        };
        let mut state = self.state.lock().expect("optimizer state lock");
        let (m, v, g) = &mut *state;
        if to - from != g.len() {
            candle_core::bail!(
                "adamw-update: {} weights but {} gradients",
                to - from,
                g.len()
            );
        }
        self.rule.apply(&mut all[from..to], m, v, g);
        Ok(())
    }
}

/// that sentence-transformers uses).
pub fn linear_lr(base: f64, done: u64, warmup: u64, total: u64) -> f64 {
    if done < warmup {
        return base * done as f64 / warmup as f64;
    }
    let rest = total.saturating_sub(warmup).max(1);
    base * (total.saturating_sub(done) as f64 / rest as f64).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert_eq!(linear_lr(1.0, 0, 4, 12), 0.0);
        assert_eq!(linear_lr(1.0, 2, 4, 12), 0.5);
        assert_eq!(linear_lr(1.0, 4, 4, 12), 1.0);
        assert_eq!(linear_lr(1.0, 8, 4, 12), 0.5);
        assert_eq!(linear_lr(1.0, 12, 4, 12), 0.0);
        assert_eq!(linear_lr(2.0, 0, 0, 10), 2.0);
    }

    #[test]
    fn two_adamw_steps_match_the_closed_form() {
        // One weight with decay and one bias without, gradients 0.5 then -1, clipped by 0.5.
        let w = Var::new(&[1.0f32], &Device::Cpu).unwrap();
        let b = Var::new(&[1.0f32], &Device::Cpu).unwrap();
        let cfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut opt = AdamW::new(
            vec![("l.weight".into(), w.clone()), ("l.bias".into(), b.clone())],
            cfg,
        )
        .unwrap();
        let (mut pw, mut pb, mut m, mut v) = (1.0f64, 1.0f64, 0.0, 0.0);
        for (t, g) in [(1, 0.5f64), (2, -1.0)] {
            let gt = Tensor::new(&[g as f32], &Device::Cpu).unwrap();
            opt.step(&HostGrads::new(&[gt.clone(), gt]).unwrap(), 0.01, 0.5)
                .unwrap();
            let g = g * 0.5;
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            let upd = (m / (1.0 - 0.9f64.powi(t))) / ((v / (1.0 - 0.999f64.powi(t))).sqrt() + 1e-8);
            pw = pw * (1.0 - 0.01 * 0.1) - 0.01 * upd;
            pb -= 0.01 * upd;
        }
        let got_w = w.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
        let got_b = b.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
        assert!(
            (got_w - pw).abs() < 1e-6 && (got_b - pb).abs() < 1e-6,
            "{got_w} vs {pw}, {got_b} vs {pb}"
        );
        assert!(got_w != got_b, "weight decay must touch only the weight");
        // The state round-trips through a checkpoint.
        let state = opt.state().unwrap();
        let mut again = AdamW::new(opt.params().to_vec(), cfg).unwrap();
        assert!(again.restore(&state, 2).unwrap().is_empty());
        assert_eq!(
            (again.m.clone(), again.v.clone(), again.steps()),
            (opt.m.clone(), opt.v.clone(), 2)
        );
        // A weight the checkpoint has no state for (frozen when it was written) starts afresh,
        // with the bias correction of its own first update.
        let mut partial = state.clone();
        partial.retain(|k, _| !k.ends_with("l.bias"));
        let mut fresh = AdamW::new(opt.params().to_vec(), cfg).unwrap();
        assert_eq!(
            fresh.restore(&partial, 2).unwrap(),
            vec!["l.bias".to_string()]
        );
        assert_eq!(fresh.steps, vec![2, 0]);
        assert!(fresh.m[1].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn in_place_and_copying_updates_agree() {
        // f32 CPU weights update in place; f64 ones take the copying path.
        let values = [0.5f32, -1.5, 2.0, 0.25];
        let w32 = Var::new(&values, &Device::Cpu).unwrap();
        let w64 = Var::from_tensor(&w32.as_tensor().to_dtype(DType::F64).unwrap()).unwrap();
        let cfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.01,
        };
        let mut a = AdamW::new(vec![("l.weight".into(), w32.clone())], cfg).unwrap();
        let mut b = AdamW::new(vec![("l.weight".into(), w64.clone())], cfg).unwrap();
        let g = HostGrads::new(&[Tensor::new(&[0.1f32, -0.2, 0.3, 0.0], &Device::Cpu).unwrap()])
            .unwrap();
        for _ in 0..3 {
            a.step(&g, 0.05, 1.0).unwrap();
            b.step(&g, 0.05, 1.0).unwrap();
        }
        let x: Vec<f32> = w32.as_tensor().to_vec1().unwrap();
        let y: Vec<f64> = w64.as_tensor().to_vec1().unwrap();
        for ((x, y), start) in x.iter().zip(&y).zip(values) {
            assert!((*x as f64 - y).abs() < 1e-6, "{x} vs {y}");
            assert!(*x != start, "the weight moved");
        }
    }

    #[test]
    fn clipping_caps_the_global_norm() {
        let g = HostGrads::new(&[
            Tensor::new(&[3.0f32], &Device::Cpu).unwrap(),
            Tensor::new(&[4.0f32], &Device::Cpu).unwrap(),
        ])
        .unwrap();
        assert!((g.norm() - 5.0).abs() < 1e-9);
        assert!((clip_scale(5.0, 1.0) * 5.0 - 1.0).abs() < 1e-6);
        assert_eq!(clip_scale(0.5, 1.0), 1.0);
        assert_eq!(clip_scale(5.0, 0.0), 1.0);
    }
}
