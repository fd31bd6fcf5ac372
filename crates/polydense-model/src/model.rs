//! [`Encoder`]: the trainable text encoder, i.e. the transformer, its pooling, its tokenizer and
//! prefixes, with every weight a `Var` in a [`VarMap`] for candle's optimisers.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};

use crate::config::EncoderConfig;
use crate::encoder::{Params, Transformer};
use crate::error::{ModelError, Result};
use crate::ffn::{FeedForward, FfnConfig, MoeConfig};
use crate::heads::{Projection, ProjectionConfig};
use crate::io::hf::{self, HfMeta, HfOutput};
use crate::ops::Kernels;
use crate::pooling::{l2_normalize, Pooling};
use crate::text_encoder::TextEncoder;
use crate::tokenize::{Prompts, TextKind, TextTokenizer, TokenBatch};

/// The longest input we tokenise to when the directory does not say (BERT's table size).
const DEFAULT_MAX_SEQ: usize = 512;

/// A text encoder whose weights are trainable: forward passes build the autograd graph.
pub struct Encoder {
    transformer: Transformer,
    varmap: VarMap,
    meta: HfMeta,
    tokenizer: Option<TextTokenizer>,
    /// A dense head on the pooled vector (a sentence-transformers Dense module).
    head: Option<Projection>,
    /// Checkpoint tensors the encoder does not use (BERT's pooler), written back on save.
    extra: Vec<(String, Tensor)>,
}

/// The names of the head's weights among the encoder's trainable variables (the module file
/// stores them as `linear.weight` and `linear.bias`).
const HEAD_PREFIX: &str = "head.";

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.meta.config)
            .field("pooling", &self.meta.pooling)
            .field("prompts", &self.meta.prompts)
            .field("trainable", &self.varmap.all_vars().len())
            .finish()
    }
}

impl Encoder {
    /// Loads an HF model directory with trainable weights.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_inner(dir, device, true)
    }

    /// Loads a directory with plain (non-variable) weights, for inference only.
    pub(crate) fn load_inner(dir: &Path, device: &Device, trainable: bool) -> Result<Self> {
        let meta = hf::read_meta(dir)?;
        let mut weights = hf::read_weights(dir, device)?;
        let weights_path = dir.join("model.safetensors");
        let varmap = VarMap::new();
        let mut source = |name: &str, shape: &[usize]| -> Result<Tensor> {
            take_weight(&mut weights, name, shape, &weights_path)
        };
        let mut params = Params {
            source: &mut source,
            varmap: trainable.then_some(&varmap),
        };
        let transformer =
            Transformer::build(&meta.config, &mut params, Kernels::for_device(device))?;
        let head = match &meta.head {
            None => None,
            Some((sub, config)) => Some(load_head(
                &dir.join(sub).join("model.safetensors"),
                config,
                meta.config.hidden_size,
                trainable.then_some(&varmap),
                device,
            )?),
        };
        let mut extra: Vec<(String, Tensor)> = weights.into_iter().collect();
        extra.sort_by(|a, b| a.0.cmp(&b.0));
        let tokenizer = match meta
            .tokenizer_files
            .iter()
            .any(|(n, _)| n == "tokenizer.json")
        {
            true => Some(TextTokenizer::from_file(
                &dir.join("tokenizer.json"),
                meta.prompts.clone(),
                meta.max_seq_length
                    .unwrap_or(DEFAULT_MAX_SEQ)
                    .min(meta.config.max_tokens()),
                meta.config.pad_token_id,
            )?),
            false => None,
        };
        Ok(Encoder {
            transformer,
            varmap,
            meta,
            tokenizer,
            head,
            extra,
        })
    }

    /// A randomly initialised f32 encoder (no tokenizer), for tests and tiny experiments.
    pub fn random(config: &EncoderConfig, device: &Device, seed: u64) -> Result<Self> {
        Self::random_with_dtype(config, DType::F32, device, seed)
    }

    /// As [`Encoder::random`] in any float dtype (f64 for finite-difference checks).
    ///
    /// Linear layers get PyTorch's default `nn.Linear` init, U(±1/√fan_in) for weight and
    /// bias; embeddings U(±1); LayerNorms γ = 1 ± 0.1, β = ±0.1, so no gradient is trivially zero.
    pub fn random_with_dtype(
        config: &EncoderConfig,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut fan_in = 1usize;
        let mut source = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let n: usize = shape.iter().product();
            let (center, half) = if name.contains("LayerNorm.weight") {
                (1.0, 0.1)
            } else if name.contains("LayerNorm.bias") {
                (0.0, 0.1)
            } else if name.contains("embeddings") {
                (0.0, 1.0)
            } else {
                if name.ends_with(".weight") {
                    fan_in = shape[1];
                }
                (0.0, 1.0 / (fan_in as f64).sqrt())
            };
            let v: Vec<f64> = (0..n)
                .map(|_| center + half * (2.0 * rng.random::<f64>() - 1.0))
                .collect();
            Ok(Tensor::from_vec(v, shape, device)?.to_dtype(dtype)?)
        };
        let varmap = VarMap::new();
        let mut params = Params {
            source: &mut source,
            varmap: Some(&varmap),
        };
        let transformer = Transformer::build(config, &mut params, Kernels::for_device(device))?;
        let meta = HfMeta {
            config: config.clone(),
            raw_config: config.to_json(None),
            pooling: Pooling::default(),
            prompts: Prompts::default(),
            max_seq_length: Some(config.max_tokens().min(DEFAULT_MAX_SEQ)),
            head: None,
            tokenizer_files: Vec::new(),
        };
        Ok(Encoder {
            transformer,
            varmap,
            meta,
            tokenizer: None,
            head: None,
            extra: Vec::new(),
        })
    }

    /// Adds a trainable projection head from `hidden` to `out` dimensions after pooling
    /// (before normalisation), initialised as PyTorch's `nn.Linear` from `seed`; it replaces
    /// any head the model had.
    pub fn with_projection(mut self, out: usize, bias: bool, seed: u64) -> Result<Self> {
        let inp = self.meta.config.hidden_size;
        let device = self.transformer.device().clone();
        let dtype = self.transformer.dtype();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let bound = 1.0 / (inp as f64).sqrt();
        let mut uniform = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|_| bound * (2.0 * rng.random::<f64>() - 1.0))
                .collect()
        };
        let w = Tensor::from_vec(uniform(out * inp), (out, inp), &device)?.to_dtype(dtype)?;
        let b = Tensor::from_vec(uniform(out), out, &device)?.to_dtype(dtype)?;
        self.set_head(Projection {
            weight: w,
            bias: bias.then_some(b),
            activation: crate::heads::ProjectionActivation::Identity,
        })?;
        Ok(self)
    }

    /// Puts `head` on the pooled vector, its weights trainable, replacing any head the model
    /// had; its input width must be the hidden size.
    pub fn set_head(&mut self, head: Projection) -> Result<()> {
        let config = head.config()?;
        let hidden = self.meta.config.hidden_size;
        if config.in_features != hidden {
            return Err(ModelError::Usage(format!(
                "a head reading {} dimensions cannot follow a {hidden}-dimensional encoder",
                config.in_features
            )));
        }
        let mut vars = self.varmap.data().lock().expect("varmap lock poisoned");
        vars.retain(|name, _| !name.starts_with(HEAD_PREFIX));
        let mut register = |name: &str, t: &Tensor| -> Result<Tensor> {
            let var = Var::from_tensor(t)?;
            let tensor = var.as_tensor().clone();
            vars.insert(format!("{HEAD_PREFIX}{name}"), var);
            Ok(tensor)
        };
        let head = Projection {
            weight: register(Projection::WEIGHT, &head.weight)?,
            bias: head
                .bias
                .as_ref()
                .map(|b| register(Projection::BIAS, b))
                .transpose()?,
            activation: head.activation,
        };
        drop(vars);
        self.meta.head = Some(("2_Dense".into(), config));
        self.head = Some(head);
        Ok(())
    }

    /// Takes the head off the pooled vector (its weights leave the trainable set), returning
    /// it; the model then embeds with its backbone alone.
    pub fn remove_head(&mut self) -> Option<Projection> {
        let head = self.head.take()?;
        self.meta.head = None;
        self.varmap
            .data()
            .lock()
            .expect("varmap lock poisoned")
            .retain(|name, _| !name.starts_with(HEAD_PREFIX));
        Some(head)
    }

    /// The trainable weights, by HF name, for an optimiser (`AdamW::new(varmap.all_vars(), ..)`).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The architecture.
    pub fn config(&self) -> &EncoderConfig {
        &self.meta.config
    }

    /// The width of the text vectors (the head's output width when there is a head).
    pub fn dim(&self) -> usize {
        match &self.meta.head {
            Some((_, h)) => h.out_features,
            None => self.meta.config.hidden_size,
        }
    }

    /// The head on the pooled vector, if any.
    pub fn head(&self) -> Option<&Projection> {
        self.head.as_ref()
    }

    /// How token states become one vector.
    pub fn pooling(&self) -> Pooling {
        self.meta.pooling
    }

    /// Sets pooling and normalisation (saved with the model).
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.meta.pooling = pooling;
        self
    }

    /// The query/passage prefixes.
    pub fn prompts(&self) -> &Prompts {
        &self.meta.prompts
    }

    /// Sets the query/passage prefixes (saved with the model).
    pub fn with_prompts(mut self, prompts: Prompts) -> Result<Self> {
        if let Some(t) = &self.tokenizer {
            self.tokenizer = Some(t.with_prompts(prompts.clone())?);
        }
        self.meta.prompts = prompts;
        Ok(self)
    }

    /// The tokenizer, when the model has one (random models do not).
    pub fn tokenizer(&self) -> Option<&TextTokenizer> {
        self.tokenizer.as_ref()
    }

    /// The transformer body.
    pub fn transformer(&self) -> &Transformer {
        &self.transformer
    }

    /// The transformer body, for swapping layers' FFNs.
    pub fn transformer_mut(&mut self) -> &mut Transformer {
        &mut self.transformer
    }

    /// Cuts the weights `trainable` refuses (by name, as in [`Encoder::varmap`]) from the
    /// autograd graph, so backward passes compute no gradient for them (the frozen embedding
    /// table of a multilingual model is 96M values). They stay variables in the varmap, so
    /// they are saved and checkpointed and keep their storage; another call with another rule
    /// makes them trainable again (a new stage of sequential training).
    pub fn freeze(&mut self, trainable: &dyn Fn(&str) -> bool) -> Result<()> {
        let vars = self.varmap.data().lock().expect("varmap lock poisoned");
        let mut source = |name: &str, _shape: &[usize]| -> Result<Tensor> {
            let var = vars.get(name).ok_or_else(|| {
                ModelError::Usage(format!("weight `{name}` is not a trainable variable"))
            })?;
            Ok(match trainable(name) {
                true => var.as_tensor().clone(),
                false => var.as_tensor().detach(),
            })
        };
        let mut params = Params {
            source: &mut source,
            varmap: None,
        };
        let kernels = self.transformer.kernels();
        let transformer = Transformer::build(&self.meta.config, &mut params, kernels)?;
        let head = match &self.head {
            None => None,
            Some(h) => Some(Projection {
                weight: params.get(&format!("{HEAD_PREFIX}{}", Projection::WEIGHT), &[])?,
                bias: match h.bias {
                    Some(_) => {
                        Some(params.get(&format!("{HEAD_PREFIX}{}", Projection::BIAS), &[])?)
                    }
                    None => None,
                },
                activation: h.activation,
            }),
        };
        drop(vars);
        self.transformer = transformer;
        self.head = head;
        Ok(())
    }

    /// Turns every dense feed-forward block into a mixture of experts (CLPL's upcycling): each
    /// expert starts as a copy of the dense weights (plus Gaussian noise of `noise` times each
    /// weight's standard deviation, so experts can diverge), the gate as N(0, 0.02²) (BERT's
    /// initializer range), all drawn from `seed`. The new weights become the trainable
    /// variables; the head and every other weight are kept.
    pub fn upgrade_to_moe(&mut self, moe: &MoeConfig, noise: f64, seed: u64) -> Result<()> {
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let cfg = self.meta.config.clone();
        if cfg.is_variant() {
            return Err(ModelError::Usage(
                "the model already has mixture-of-experts blocks".into(),
            ));
        }
        if moe.experts < 2 || moe.top_k == 0 || moe.top_k > moe.experts {
            return Err(ModelError::Usage(format!(
                "{} experts with top_k {}: need at least 2 experts and 1 ≤ top_k ≤ experts",
                moe.experts, moe.top_k
            )));
        }
        let mut weights: std::collections::HashMap<String, Tensor> = self
            .transformer
            .named_tensors()
            .into_iter()
            .map(|(n, t)| Ok((n, t.detach())))
            .collect::<Result<_>>()?;
        let (device, dtype) = (self.transformer.device().clone(), self.transformer.dtype());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let normal = rand_distr::Normal::new(0.0, 0.02).expect("a finite std");
        for n in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{n}");
            let gate: Vec<f64> = (0..moe.experts * cfg.hidden_size)
                .map(|_| normal.sample(&mut rng))
                .collect();
            let gate = Tensor::from_vec(gate, (moe.experts, cfg.hidden_size), &device)?;
            weights.insert(format!("{p}.moe.gate.weight"), gate.to_dtype(dtype)?);
            for (name, split) in [
                ("intermediate", moe.layers.intermediate()),
                ("output", moe.layers.output()),
            ] {
                if !split {
                    continue;
                }
                for part in ["weight", "bias"] {
                    let dense = weights
                        .remove(&format!("{p}.{name}.dense.{part}"))
                        .ok_or_else(|| ModelError::Usage(format!("{p} has no {name}.dense")))?;
                    for e in 0..moe.experts {
                        let copy =
                            crate::ffn::moe::perturbed(&dense, noise, rand::Rng::random(&mut rng))?;
                        weights.insert(format!("{p}.{name}.experts.{e}.{part}"), copy);
                    }
                }
            }
        }
        let mut config = cfg;
        config.ffn = vec![FfnConfig::Moe(moe.clone()); config.num_hidden_layers];
        let varmap = VarMap::new();
        let mut source = |name: &str, _shape: &[usize]| -> Result<Tensor> {
            weights
                .remove(name)
                .ok_or_else(|| ModelError::Usage(format!("no weight `{name}` after the upgrade")))
        };
        let mut params = Params {
            source: &mut source,
            varmap: Some(&varmap),
        };
        let kernels = self.transformer.kernels();
        self.transformer = Transformer::build(&config, &mut params, kernels)?;
        self.meta.config = config;
        self.varmap = varmap;
        if let Some(head) = self.head.take() {
            self.set_head(head)?;
        }
        Ok(())
    }

    /// Tokens routed to each expert of each layer since the last call (empty for dense
    /// layers), and the sum over the layers of the load-balancing terms of the last forward
    /// pass (Switch Transformer adds one per router layer); both are reset.
    pub fn take_routing(&self) -> (Vec<Vec<u64>>, Option<Tensor>) {
        let mut tokens = Vec::new();
        let mut balance: Option<Tensor> = None;
        for l in self.transformer.layers() {
            match &l.ffn {
                FeedForward::Moe(m) => {
                    let (t, b) = m.take_stats();
                    tokens.push(t);
                    if let Some(b) = b {
                        balance = Some(match balance {
                            Some(sum) => (sum + b).expect("scalars add"),
                            None => b,
                        });
                    }
                }
                FeedForward::Dense(_) => tokens.push(Vec::new()),
            }
        }
        (tokens, balance)
    }

    /// Chooses fused kernels or the plain composition (checks and non-CPU devices).
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.transformer.set_kernels(kernels);
    }

    /// Tokenises texts (with the prefix of their kind) into one padded batch, in order.
    pub fn tokenize(&self, texts: &[&str], kind: TextKind) -> Result<TokenBatch> {
        let t = self
            .tokenizer
            .as_ref()
            .ok_or_else(|| ModelError::Usage("this encoder has no tokenizer".into()))?;
        t.batch(texts, kind, self.transformer.device())
    }

    /// Pooled (and, if the model says so, normalised) vectors `[batch, dim]`; differentiable.
    pub fn forward(&self, batch: &TokenBatch) -> Result<Tensor> {
        let hidden = self.transformer.forward(batch)?;
        self.vectors(&hidden, batch, self.head.as_ref())
    }

    /// As [`Encoder::forward`] without building an autograd graph (the weights are shared,
    /// not copied), for GradCache's first pass and for evaluation during training.
    pub fn forward_detached(&self, batch: &TokenBatch) -> Result<Tensor> {
        let hidden = self.transformer.detached().forward(batch)?;
        let head = self.head.as_ref().map(Projection::detached);
        self.vectors(&hidden, batch, head.as_ref())
    }

    /// The text vectors from the last hidden states, as sentence-transformers' modules run:
    /// pooling, then the head, then normalisation.
    fn vectors(
        &self,
        hidden: &Tensor,
        batch: &TokenBatch,
        head: Option<&Projection>,
    ) -> Result<Tensor> {
        let pooling = self.meta.pooling;
        let raw = Pooling {
            normalize: false,
            ..pooling
        };
        let mut v = raw.pool(hidden, batch.lengths(), batch.seq_len())?;
        if let Some(h) = head {
            v = h.forward(&v)?;
        }
        Ok(match pooling.normalize {
            true => l2_normalize(&v)?,
            false => v,
        })
    }

    /// Tokenises and encodes texts in one batch, differentiably; for training steps.
    pub fn forward_texts(&self, texts: &[&str], kind: TextKind) -> Result<Tensor> {
        self.forward(&self.tokenize(texts, kind)?)
    }

    /// An inference encoder over the same weight storage: no graph, and it sees the
    /// optimiser's later updates (for re-encoding the corpus between epochs).
    pub fn text_encoder(&self) -> Result<TextEncoder> {
        let frozen = Encoder {
            transformer: self.transformer.detached(),
            varmap: VarMap::new(),
            meta: self.meta.clone(),
            tokenizer: self.tokenizer.clone(),
            head: self.head.as_ref().map(Projection::detached),
            extra: Vec::new(),
        };
        TextEncoder::from_encoder(frozen)
    }

    /// Saves as an HF + sentence-transformers directory (atomically replacing `dir`).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut tensors = self.transformer.named_tensors();
        tensors.extend(self.extra.iter().cloned());
        let head = self
            .head
            .as_ref()
            .map(Projection::named)
            .unwrap_or_default();
        hf::write_dir(
            dir,
            &HfOutput {
                meta: &self.meta,
                tensors: &tensors,
                head: &head,
            },
        )
    }
}

/// Takes the tensor `name` out of a checkpoint's tensors, checking it has the shape the
/// config implies; errors name the weight and the file.
fn take_weight(
    tensors: &mut std::collections::HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
    path: &Path,
) -> Result<Tensor> {
    let t = tensors
        .remove(name)
        .ok_or_else(|| ModelError::MissingWeight {
            name: name.to_string(),
            path: path.to_path_buf(),
        })?;
    if t.dims() != shape {
        return Err(ModelError::WeightShape {
            name: name.to_string(),
            path: path.to_path_buf(),
            found: t.dims().to_vec(),
            expected: shape.to_vec(),
        });
    }
    Ok(t)
}

/// Reads a head's weights from its module file, checking them against its config, and
/// registers them as trainable variables under [`HEAD_PREFIX`] when `varmap` is given.
fn load_head(
    path: &Path,
    config: &ProjectionConfig,
    hidden: usize,
    varmap: Option<&VarMap>,
    device: &Device,
) -> Result<Projection> {
    if config.in_features != hidden {
        return Err(ModelError::Config {
            path: path.with_file_name("config.json"),
            field: "in_features".into(),
            message: format!(
                "{} (the encoder's hidden size is {hidden})",
                config.in_features
            ),
        });
    }
    if !path.is_file() {
        return Err(ModelError::MissingFile {
            path: path.to_path_buf(),
            hint: "the Dense head's weights must be in safetensors format".into(),
        });
    }
    let mut tensors = candle_core::safetensors::load(path, device)?;
    let mut source = |name: &str, shape: &[usize]| -> Result<Tensor> {
        let t = take_weight(
            &mut tensors,
            name.trim_start_matches(HEAD_PREFIX),
            shape,
            path,
        )?;
        Ok(t.to_dtype(DType::F32)?)
    };
    let mut params = Params {
        source: &mut source,
        varmap,
    };
    let (out, inp) = (config.out_features, config.in_features);
    Ok(Projection {
        weight: params.get(&format!("{HEAD_PREFIX}{}", Projection::WEIGHT), &[out, inp])?,
        bias: match config.bias {
            true => Some(params.get(&format!("{HEAD_PREFIX}{}", Projection::BIAS), &[out])?),
            false => None,
        },
        activation: config.activation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Family;
    use crate::pooling::PoolingMode;
    use candle_core::Var;

    fn batch() -> TokenBatch {
        TokenBatch::from_ids(
            &[vec![2, 7, 9, 3], vec![2, 11, 3], vec![2, 3]],
            0,
            &Device::Cpu,
        )
        .unwrap()
    }

    /// Central differences of `loss` in entry `j` of `var` against the analytic gradient `g`.
    fn check_entry(name: &str, var: &Var, g: &[f64], j: usize, loss: &dyn Fn() -> f64) {
        let base = var.as_tensor().copy().unwrap();
        let flat: Vec<f64> = base.flatten_all().unwrap().to_vec1().unwrap();
        let eps = 1e-6;
        let at = |d: f64| {
            let mut x = flat.clone();
            x[j] += d;
            var.set(&Tensor::from_vec(x, base.dims(), &Device::Cpu).unwrap())
                .unwrap();
            loss()
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        var.set(&base).unwrap();
        let err = (numeric - g[j]).abs() / (1.0 + numeric.abs());
        assert!(
            err < 1e-6,
            "{name}[{j}]: analytic {} numeric {numeric}",
            g[j]
        );
    }

    /// Checks the model's gradient against central differences on the largest-gradient and
    /// a few fixed entries of every weight.
    fn check_model(mut enc: Encoder) {
        let b = batch();
        let out = enc.forward(&b).unwrap();
        let w = crate::ops::gradcheck::randn(out.dims(), 11, 1.0);
        let loss = |e: &Encoder| -> f64 {
            (e.forward(&b).unwrap() * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar()
                .unwrap()
        };
        let grads = (out * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let vars: Vec<(String, Var)> = {
            let data = enc.varmap().data().lock().unwrap();
            let mut v: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        assert_eq!(vars.len(), 5 + 16 * enc.config().num_hidden_layers);
        for (name, var) in &vars {
            let g: Vec<f64> = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no grad"))
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let argmax = (0..g.len())
                .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
                .unwrap();
            if name.ends_with("attention.self.key.bias") {
                // Softmax ignores a shift shared by all keys, and q·b_k is one: zero in exact arithmetic.
                assert!(g[argmax].abs() < 1e-12, "{name}: {}", g[argmax]);
            } else {
                assert!(g[argmax].abs() > 1e-8, "{name}: gradient is zero");
            }
            for j in [argmax, 0, g.len() / 2, g.len() - 1] {
                check_entry(name, var, &g, j, &|| loss(&enc));
            }
        }
        // The plain composition computes the same function.
        let fused = enc.forward(&b).unwrap();
        enc.set_kernels(Kernels::Composed);
        let composed = enc.forward(&b).unwrap();
        let diff = crate::ops::gradcheck::max_abs_diff(&fused, &composed);
        assert!(diff < 1e-12, "fused vs composed: {diff}");
    }

    #[test]
    fn tiny_bert_finite_differences_mean_normalised() {
        let enc =
            Encoder::random_with_dtype(&EncoderConfig::tiny_bert(), DType::F64, &Device::Cpu, 1)
                .unwrap();
        check_model(enc);
    }

    #[test]
    fn tiny_xlmr_finite_differences_cls() {
        let mut cfg = EncoderConfig::tiny_bert();
        cfg.family = Family::Roberta;
        cfg.model_type = "xlm-roberta".into();
        cfg.type_vocab_size = 1;
        cfg.pad_token_id = 1;
        cfg.hidden_act = crate::config::Activation::GeluTanh;
        let enc = Encoder::random_with_dtype(&cfg, DType::F64, &Device::Cpu, 2)
            .unwrap()
            .with_pooling(Pooling {
                mode: PoolingMode::Cls,
                normalize: false,
            });
        check_model(enc);
    }

    #[test]
    fn padding_does_not_change_a_text_vector() {
        let enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, 3).unwrap();
        let alone = enc
            .forward(&TokenBatch::from_ids(&[vec![2, 11, 3]], 0, &Device::Cpu).unwrap())
            .unwrap();
        let padded = enc
            .forward(&batch())
            .unwrap()
            .get(1)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let diff: f32 = (alone - padded)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn save_and_load_round_trip() {
        let enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, 4)
            .unwrap()
            .with_pooling(Pooling {
                mode: PoolingMode::Cls,
                normalize: true,
            })
            .with_prompts(Prompts {
                query: "query: ".into(),
                passage: "passage: ".into(),
            })
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        enc.save(&dir).unwrap();
        enc.save(&dir).unwrap(); // replacing an existing directory works too
        let back = Encoder::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(back.pooling(), enc.pooling());
        assert_eq!(back.prompts(), enc.prompts());
        assert_eq!(back.config(), enc.config());
        let a: Vec<Vec<f32>> = enc.forward(&batch()).unwrap().to_vec2().unwrap();
        let b: Vec<Vec<f32>> = back.forward(&batch()).unwrap().to_vec2().unwrap();
        assert_eq!(a, b);
        assert!(dir.join("2_Normalize").is_dir() && dir.join("modules.json").is_file());
    }

    #[test]
    fn a_projection_head_round_trips_as_a_sentence_transformers_dense_module() {
        let enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, 5)
            .unwrap()
            .with_projection(6, true, 9)
            .unwrap();
        assert_eq!(enc.dim(), 6);
        let out = enc.forward(&batch()).unwrap();
        assert_eq!(out.dims(), &[3, 6]);
        // Normalisation comes after the head, as sentence-transformers runs its modules.
        let norms: Vec<f32> = out.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5), "{norms:?}");
        // The head's weights train with the rest.
        let names: Vec<String> = enc
            .varmap()
            .data()
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert!(
            names.contains(&"head.linear.weight".to_string()),
            "{names:?}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        enc.save(&dir).unwrap();
        let modules: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("modules.json")).unwrap())
                .unwrap();
        let kinds: Vec<&str> = modules
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["path"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["", "1_Pooling", "2_Dense", "3_Normalize"]);
        assert!(dir.join("2_Dense/model.safetensors").is_file());
        let back = Encoder::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(back.dim(), 6);
        let a: Vec<Vec<f32>> = out.to_vec2().unwrap();
        let b: Vec<Vec<f32>> = back.forward(&batch()).unwrap().to_vec2().unwrap();
        assert_eq!(a, b);
        // Inference without a graph gives the same vectors.
        let c: Vec<Vec<f32>> = back.forward_detached(&batch()).unwrap().to_vec2().unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn frozen_weights_get_no_gradient_and_can_train_again() {
        let mut enc =
            Encoder::random_with_dtype(&EncoderConfig::tiny_bert(), DType::F64, &Device::Cpu, 6)
                .unwrap();
        let vars: Vec<(String, Var)> = enc
            .varmap()
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let before = enc.forward(&batch()).unwrap();
        let trains = |n: &str| n.starts_with("encoder.layer.1.");
        enc.freeze(&trains).unwrap();
        let out = enc.forward(&batch()).unwrap();
        assert_eq!(
            before.to_vec2::<f64>().unwrap(),
            out.to_vec2::<f64>().unwrap(),
            "freezing changes no output"
        );
        let grads = out.sum_all().unwrap().backward().unwrap();
        for (name, var) in &vars {
            let g = grads.get(var.as_tensor());
            assert_eq!(g.is_some(), trains(name), "{name}");
        }
        enc.freeze(&|_| true).unwrap();
        let grads = enc
            .forward(&batch())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(vars
            .iter()
            .filter(|(n, _)| n.starts_with("embeddings."))
            .all(|(_, v)| grads.get(v.as_tensor()).is_some()));
    }

    fn moe(layers: crate::ffn::ExpertLayers, scale: crate::ffn::RouterScale) -> MoeConfig {
        MoeConfig {
            experts: 2,
            top_k: 1,
            layers,
            router_scale: scale,
        }
    }

    #[test]
    fn an_upcycled_model_starts_as_the_dense_one_and_round_trips() {
        use crate::ffn::{ExpertLayers, RouterScale};
        let mut enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, 7).unwrap();
        let dense: Vec<Vec<f32>> = enc.forward(&batch()).unwrap().to_vec2().unwrap();
        enc.upgrade_to_moe(&moe(ExpertLayers::Intermediate, RouterScale::Unit), 0.0, 3)
            .unwrap();
        let upcycled: Vec<Vec<f32>> = enc.forward(&batch()).unwrap().to_vec2().unwrap();
        for (a, b) in dense.iter().flatten().zip(upcycled.iter().flatten()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let names: Vec<String> = enc
            .varmap()
            .data()
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert!(names.contains(&"encoder.layer.1.moe.gate.weight".to_string()));
        assert!(names.contains(&"encoder.layer.1.intermediate.experts.1.weight".to_string()));
        assert!(!names.iter().any(|n| n.contains("intermediate.dense")));
        // Every token of every layer was routed once.
        let (tokens, balance) = enc.take_routing();
        let valid: u64 = batch().lengths().iter().sum::<usize>() as u64;
        assert!(
            tokens.iter().all(|t| t.iter().sum::<u64>() == valid),
            "{tokens:?}"
        );
        assert!(balance.is_some());
        let tmp = tempfile::tempdir().unwrap();
        enc.save(&tmp.path().join("m")).unwrap();
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join("m/config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(config["polydense"]["ffn"][0]["kind"], "moe");
        let back = Encoder::load(&tmp.path().join("m"), &Device::Cpu).unwrap();
        assert_eq!(back.config(), enc.config());
        let again: Vec<Vec<f32>> = back.forward(&batch()).unwrap().to_vec2().unwrap();
        assert_eq!(again, upcycled);
    }

    #[test]
    fn expert_blocks_pass_finite_differences_and_the_gate_learns() {
        use crate::ffn::{ExpertLayers, RouterScale};
        for (layers, scale) in [
            (ExpertLayers::Intermediate, RouterScale::Probability),
            (ExpertLayers::Both, RouterScale::Unit),
            (ExpertLayers::Both, RouterScale::Probability),
            (ExpertLayers::Intermediate, RouterScale::Unit),
            (ExpertLayers::Output, RouterScale::Probability),
        ] {
            let mut enc = Encoder::random_with_dtype(
                &EncoderConfig::tiny_bert(),
                DType::F64,
                &Device::Cpu,
                8,
            )
            .unwrap();
            // Noisy copies, so the experts differ and routing matters.
            enc.upgrade_to_moe(&moe(layers, scale), 0.3, 5).unwrap();
            let b = batch();
            let out = enc.forward(&b).unwrap();
            let w = crate::ops::gradcheck::randn(out.dims(), 12, 1.0);
            let loss = |e: &Encoder| -> f64 {
                (e.forward(&b).unwrap() * &w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar()
                    .unwrap()
            };
            let grads = (out * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let vars: Vec<(String, Var)> = {
                let data = enc.varmap().data().lock().unwrap();
                let mut v: Vec<_> = data
                    .iter()
                    .filter(|(k, _)| k.contains("moe.") || k.contains("experts."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            };
            assert!(!vars.is_empty());
            for (name, var) in &vars {
                let g: Vec<f64> = match grads.get(var.as_tensor()) {
                    Some(g) => g.flatten_all().unwrap().to_vec1().unwrap(),
                    // An expert no token was routed to gets no gradient.
                    None => continue,
                };
                let argmax = (0..g.len())
                    .max_by(|&a, &c| g[a].abs().total_cmp(&g[c].abs()))
                    .unwrap();
                assert!(g[argmax].abs() > 1e-8, "{layers:?} {name}: no gradient");
                // Under the unit scale the function does not depend on the gate (its gradient
                // is a surrogate); it must be there, and is not a derivative to check.
                if scale == RouterScale::Unit && name.contains("moe.gate") {
                    continue;
                }
                for j in [argmax, 0, g.len() - 1] {
                    check_entry(&format!("{layers:?} {name}"), var, &g, j, &|| loss(&enc));
                }
            }
        }
    }
}
