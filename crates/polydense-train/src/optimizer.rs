//! [`AdamW`] (Loshchilov and Hutter 2019) with state we can checkpoint, global-norm gradient
//! clipping, and the linear warm-up/decay schedule.
//!
//! Hand-written because candle-nn's `AdamW` keeps its moment estimates private: a checkpoint
//! could not store them, and `--resume` could not continue the same trajectory.

use std::collections::HashMap;

use candle_core::{DType, Tensor, Var};

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

/// AdamW over named variables, updating them in place, with PyTorch's bias correction.
/// Biases and LayerNorm weights get no weight decay, as sentence-transformers' `fit` and the
/// HF Trainer exclude them.
#[derive(Debug)]
pub struct AdamW {
    params: Vec<(String, Var)>,
    decay: Vec<bool>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    steps: u64,
    config: AdamWConfig,
}

impl AdamW {
    /// Zero moments for every parameter.
    pub fn new(params: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        let m = params
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<_>>()?;
        let v = params
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<_>>()?;
        let decay = params
            .iter()
            .map(|(n, _)| !(n.ends_with(".bias") || n.contains("LayerNorm")))
            .collect();
        Ok(AdamW {
            params,
            decay,
            m,
            v,
            steps: 0,
            config,
        })
    }

    /// The optimised variables, in the order [`AdamW::step`] expects their gradients.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update with learning rate `lr`; `grads[i]` belongs to `params()[i]`.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        let c = self.config;
        self.steps += 1;
        let t = self.steps as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        for (i, ((_, var), g)) in self.params.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((&v / bc2)?.sqrt()? + c.eps)?;
            let update = ((&m / bc1)? / denom)?;
            let p = var.as_tensor();
            let p = match self.decay[i] && c.weight_decay > 0.0 {
                true => (p * (1.0 - lr * c.weight_decay))?,
                false => p.clone(),
            };
            var.set(&(p - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.NAME`, `v.NAME`) for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments and the step count from a checkpoint.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for (i, (name, var)) in self.params.iter().enumerate() {
            let get = |key: String| -> Result<Tensor> {
                let t = state.get(&key).ok_or_else(|| {
                    TrainError::config("resume", format!("optimizer state lacks `{key}`"))
                })?;
                let p = var.as_tensor();
                Ok(t.to_device(p.device())?.to_dtype(p.dtype())?)
            };
            self.m[i] = get(format!("m.{name}"))?;
            self.v[i] = get(format!("v.{name}"))?;
        }
        self.steps = steps;
        Ok(())
    }
}

/// The global L2 norm of all gradients.
pub fn grad_norm(grads: &[Tensor]) -> Result<f64> {
    let mut sum = 0.0;
    for g in grads {
        sum += g
            .to_dtype(DType::F64)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f64>()?;
    }
    Ok(sum.sqrt())
}

/// Scales the gradients so their global norm is at most `max_norm` (as PyTorch's
/// `clip_grad_norm_`, with its 1e-6 guard); returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let norm = grad_norm(grads)?;
    if max_norm > 0.0 && norm.is_finite() {
        let scale = max_norm / (norm + 1e-6);
        if scale < 1.0 {
            for g in grads.iter_mut() {
                *g = (&*g * scale)?;
            }
        }
    }
    Ok(norm)
}

/// The learning rate for the step after `done` completed steps: linear warm-up from 0 over
/// `warmup` steps, then linear decay to 0 at `total` (the HF `get_linear_schedule_with_warmup`
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
        // One weight with decay and one bias without, gradients 0.5 then -1.
        let w = Var::new(&[1.0f64], &Device::Cpu).unwrap();
        let b = Var::new(&[1.0f64], &Device::Cpu).unwrap();
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
            let gt = Tensor::new(&[g], &Device::Cpu).unwrap();
            opt.step(&[gt.clone(), gt], 0.01).unwrap();
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            let upd = (m / (1.0 - 0.9f64.powi(t))) / ((v / (1.0 - 0.999f64.powi(t))).sqrt() + 1e-8);
            pw = pw * (1.0 - 0.01 * 0.1) - 0.01 * upd;
            pb -= 0.01 * upd;
        }
        let got_w = w.as_tensor().to_vec1::<f64>().unwrap()[0];
        let got_b = b.as_tensor().to_vec1::<f64>().unwrap()[0];
        assert!(
            (got_w - pw).abs() < 1e-12 && (got_b - pb).abs() < 1e-12,
            "{got_w} {got_b}"
        );
        assert!(got_w != got_b, "weight decay must touch only the weight");
    }

    #[test]
    fn clipping_caps_the_global_norm() {
        let mut g = vec![
            Tensor::new(&[3.0f32], &Device::Cpu).unwrap(),
            Tensor::new(&[4.0f32], &Device::Cpu).unwrap(),
        ];
        assert!((clip_grad_norm(&mut g, 1.0).unwrap() - 5.0).abs() < 1e-9);
        assert!((grad_norm(&g).unwrap() - 1.0).abs() < 1e-5);
    }
}
