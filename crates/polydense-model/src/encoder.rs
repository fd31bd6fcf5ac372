//! The transformer: embeddings, then N post-LN layers of self-attention and feed-forward,
//! as in BERT (Devlin et al. 2019) and XLM-R, with every op differentiable.
//!
//! Hidden states stay flat, `[batch·seq, hidden]`, from the embeddings to the last layer: the
//! projections are then plain 2-D matmuls and only attention looks at the sequence structure.
//! Dropout is left out: the encoders are fine-tuned here with contrastive losses at small
//! learning rates, where the DPR-style recipes we follow train well without it; add it here
//! (after the embeddings, the attention probabilities and each sublayer) if a recipe needs it.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;

use crate::config::{EncoderConfig, Family};
use crate::ffn::{DenseFeedForward, FeedForward, FfnConfig, MoeFeedForward};
use crate::linear::Linear;
use crate::ops::attention::{attention, AttentionShape};
use crate::ops::layer::{dense_layer, pack, LayerSpec};
use crate::ops::layer_norm::layer_norm;
use crate::ops::Kernels;
use crate::tokenize::TokenBatch;

/// Where the parameters come from, and whether they become trainable variables.
pub(crate) struct Params<'a> {
    /// Gives the tensor for an HF name and the shape the config implies.
    pub source: &'a mut dyn FnMut(&str, &[usize]) -> crate::Result<Tensor>,
    /// When set, each parameter is made a `Var` and registered here under its HF name.
    pub varmap: Option<&'a VarMap>,
}

impl Params<'_> {
    pub(crate) fn get(&mut self, name: &str, shape: &[usize]) -> crate::Result<Tensor> {
        let t = (self.source)(name, shape)?;
        match self.varmap {
            Some(vm) => {
                let var = Var::from_tensor(&t)?;
                let tensor = var.as_tensor().clone();
                vm.data()
                    .lock()
                    .expect("varmap lock poisoned")
                    .insert(name.to_string(), var);
                Ok(tensor)
            }
            None => Ok(t),
        }
    }

    fn linear(&mut self, prefix: &str, out: usize, inp: usize) -> crate::Result<Linear> {
        Ok(Linear {
            weight: self.get(&format!("{prefix}.weight"), &[out, inp])?,
            bias: self.get(&format!("{prefix}.bias"), &[out])?,
        })
    }

    fn norm(&mut self, prefix: &str, h: usize) -> crate::Result<Norm> {
        Ok(Norm {
            gamma: self.get(&format!("{prefix}.weight"), &[h])?,
            beta: self.get(&format!("{prefix}.bias"), &[h])?,
        })
    }
}

/// A LayerNorm's affine parameters.
#[derive(Debug, Clone)]
pub struct Norm {
    /// Scale γ.
    pub gamma: Tensor,
    /// Shift β.
    pub beta: Tensor,
}

impl Norm {
    fn named(&self, prefix: &str) -> Vec<(String, Tensor)> {
        vec![
            (format!("{prefix}.weight"), self.gamma.clone()),
            (format!("{prefix}.bias"), self.beta.clone()),
        ]
    }
    fn detached(&self) -> Self {
        Norm {
            gamma: self.gamma.detach(),
            beta: self.beta.detach(),
        }
    }
}

/// Word + position + token-type embeddings, then LayerNorm.
#[derive(Debug, Clone)]
pub struct Embeddings {
    /// `[vocab, hidden]`.
    pub word: Tensor,
    /// `[max_positions, hidden]`.
    pub position: Tensor,
    /// `[type_vocab, hidden]`.
    pub token_type: Tensor,
    /// The LayerNorm after the sum.
    pub norm: Norm,
}

/// One post-LN transformer layer.
#[derive(Debug)]
pub struct Layer {
    /// `attention.self.{query,key,value}`.
    pub query: Linear,
    /// See `query`.
    pub key: Linear,
    /// See `query`.
    pub value: Linear,
    /// `attention.output.dense`.
    pub attn_out: Linear,
    /// `attention.output.LayerNorm`.
    pub attn_norm: Norm,
    /// The feed-forward block, of the kind the config names for this layer.
    pub ffn: FeedForward,
    /// `output.LayerNorm`.
    pub out_norm: Norm,
}

/// The BERT / XLM-R encoder body: token ids in, contextual hidden states out.
#[derive(Debug)]
pub struct Transformer {
    config: EncoderConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    kernels: Kernels,
}

impl Transformer {
    /// Builds the network, taking each parameter from `params` by its HF name.
    pub(crate) fn build(
        config: &EncoderConfig,
        params: &mut Params,
        kernels: Kernels,
    ) -> crate::Result<Self> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let embeddings = Embeddings {
            word: params.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: params.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type: params.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, h],
            )?,
            norm: params.norm("embeddings.LayerNorm", h)?,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for n in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{n}");
            layers.push(Layer {
                query: params.linear(&format!("{p}.attention.self.query"), h, h)?,
                key: params.linear(&format!("{p}.attention.self.key"), h, h)?,
                value: params.linear(&format!("{p}.attention.self.value"), h, h)?,
                attn_out: params.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: params.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                ffn: match config.ffn_of(n) {
                    FfnConfig::Dense => FeedForward::Dense(DenseFeedForward {
                        intermediate: params.linear(&format!("{p}.intermediate.dense"), i, h)?,
                        output: params.linear(&format!("{p}.output.dense"), h, i)?,
                        act: config.hidden_act,
                    }),
                    FfnConfig::Moe(moe) => {
                        let mut dense = |name: &str, split: bool, out, inp| {
                            let count = if split { moe.experts } else { 1 };
                            (0..count)
                                .map(|e| match split {
                                    true => {
                                        params.linear(&format!("{p}.{name}.experts.{e}"), out, inp)
                                    }
                                    false => params.linear(&format!("{p}.{name}.dense"), out, inp),
                                })
                                .collect::<crate::Result<Vec<_>>>()
                        };
                        let intermediate = dense("intermediate", moe.layers.intermediate(), i, h)?;
                        let output = dense("output", moe.layers.output(), h, i)?;
                        FeedForward::Moe(MoeFeedForward::new(
                            params.get(&format!("{p}.moe.gate.weight"), &[moe.experts, h])?,
                            intermediate,
                            output,
                            config.hidden_act,
                            moe.clone(),
                        ))
                    }
                },
                out_norm: params.norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        Ok(Transformer {
            config: config.clone(),
            embeddings,
            layers,
            kernels,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Which kernels the forward pass uses (fused on CPU by default).
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Switches between fused kernels and the plain composition (for checks).
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Hidden states of the last layer, `[batch·seq, hidden]`. With the fused kernels the
    /// layers run on the valid tokens only (packed rows) and padding rows come back as zeros;
    /// the composed path computes them as HF does. Pooling reads neither.
    pub fn forward(&self, batch: &TokenBatch) -> Result<Tensor> {
        let heads = self.config.num_attention_heads;
        let (lengths, seq) = (batch.lengths(), batch.seq_len());
        let packed = self.kernels == Kernels::Fused;
        let shape = match packed {
            true => AttentionShape::packed(lengths, heads),
            false => AttentionShape::padded(lengths, seq, heads),
        };
        let mut x = self.embed(batch, packed)?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &shape)?;
        }
        match packed {
            true => unpack(&x, lengths, seq),
            false => Ok(x),
        }
    }

    /// The embedding sums after their norm, one row per token: every `[batch·seq]` position,
    /// or only the valid tokens when `packed`.
    fn embed(&self, batch: &TokenBatch, packed: bool) -> Result<Tensor> {
        let e = &self.embeddings;
        let device = e.word.device();
        let lengths = batch.lengths();
        let keep = |t: &Tensor| -> Result<Vec<u32>> {
            let rows = t.to_device(&Device::Cpu)?.to_vec2::<u32>()?;
            Ok(rows
                .into_iter()
                .zip(lengths)
                .flat_map(|(r, &len)| {
                    let take = if packed { len } else { r.len() };
                    r.into_iter().take(take)
                })
                .collect())
        };
        let ids = keep(batch.ids())?;
        let types = keep(batch.type_ids())?;
        let positions = self.position_ids(batch, packed);
        let n = ids.len();
        let tensor = |v: Vec<u32>| Tensor::from_vec(v, n, device);
        let sum = ((e.word.embedding(&tensor(ids)?)?
            + e.position.embedding(&tensor(positions)?)?)?
            + e.token_type.embedding(&tensor(types)?)?)?;
        layer_norm(
            &sum,
            &e.norm.gamma,
            &e.norm.beta,
            self.config.layer_norm_eps,
            self.kernels,
        )
    }

    /// BERT numbers positions 0..n; RoBERTa/XLM-R numbers real tokens from pad_id + 1 and
    /// gives padding the pad id (HF `create_position_ids_from_input_ids`). `packed` leaves
    /// out the padding.
    fn position_ids(&self, batch: &TokenBatch, packed: bool) -> Vec<u32> {
        let s = batch.seq_len();
        let pad = self.config.pad_token_id;
        batch
            .lengths()
            .iter()
            .flat_map(|&len| {
                (0..if packed { len } else { s } as u32).map(move |j| match self.config.family {
                    Family::Bert => j,
                    Family::Roberta if (j as usize) < len => pad + 1 + j,
                    Family::Roberta => pad,
                })
            })
            .collect()
    }

    fn layer(&self, l: &Layer, x: &Tensor, shape: &AttentionShape) -> Result<Tensor> {
        if let (Kernels::Fused, FeedForward::Dense(d)) = (self.kernels, &l.ffn) {
            let (inter, out) = (&d.intermediate, &d.output);
            {
                let packed = pack(&[
                    &l.query.weight,
                    &l.key.weight,
                    &l.value.weight,
                    &l.query.bias,
                    &l.key.bias,
                    &l.value.bias,
                    &l.attn_out.weight,
                    &l.attn_out.bias,
                    &l.attn_norm.gamma,
                    &l.attn_norm.beta,
                    &inter.weight,
                    &inter.bias,
                    &out.weight,
                    &out.bias,
                    &l.out_norm.gamma,
                    &l.out_norm.beta,
                ])?;
                let spec = LayerSpec {
                    hidden: self.config.hidden_size,
                    intermediate: self.config.intermediate_size,
                    eps: self.config.layer_norm_eps,
                    act: self.config.hidden_act,
                    shape: shape.clone(),
                };
                return dense_layer(x, &packed, &spec);
            }
        }
        let eps = self.config.layer_norm_eps;
        // One matmul for Q, K and V: the fused attention kernel reads the heads from it in place.
        let w = Tensor::cat(&[&l.query.weight, &l.key.weight, &l.value.weight], 0)?;
        let b = Tensor::cat(&[&l.query.bias, &l.key.bias, &l.value.bias], 0)?;
        let qkv = x.matmul(&w.t()?)?.broadcast_add(&b)?;
        let context = attention(&qkv, shape, self.kernels)?;
        let h = layer_norm(
            &(l.attn_out.forward(&context)? + x)?,
            &l.attn_norm.gamma,
            &l.attn_norm.beta,
            eps,
            self.kernels,
        )?;
        let f = l.ffn.forward(&h, self.kernels)?;
        layer_norm(
            &(f + &h)?,
            &l.out_norm.gamma,
            &l.out_norm.beta,
            eps,
            self.kernels,
        )
    }

    /// Every parameter under its HF name (unprefixed, as sentence-transformers stores BERT).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let e = &self.embeddings;
        let mut v = vec![
            (
                "embeddings.word_embeddings.weight".to_string(),
                e.word.clone(),
            ),
            (
                "embeddings.position_embeddings.weight".to_string(),
                e.position.clone(),
            ),
            (
                "embeddings.token_type_embeddings.weight".to_string(),
                e.token_type.clone(),
            ),
        ];
        v.extend(e.norm.named("embeddings.LayerNorm"));
        for (n, l) in self.layers.iter().enumerate() {
            let p = format!("encoder.layer.{n}");
            v.extend(l.query.named(&format!("{p}.attention.self.query")));
            v.extend(l.key.named(&format!("{p}.attention.self.key")));
            v.extend(l.value.named(&format!("{p}.attention.self.value")));
            v.extend(l.attn_out.named(&format!("{p}.attention.output.dense")));
            v.extend(
                l.attn_norm
                    .named(&format!("{p}.attention.output.LayerNorm")),
            );
            v.extend(l.ffn.named(&p));
            v.extend(l.out_norm.named(&format!("{p}.output.LayerNorm")));
        }
        v
    }

    /// A copy cut from the autograd graph (sharing storage), for inference without a graph.
    pub fn detached(&self) -> Self {
        let e = &self.embeddings;
        Transformer {
            config: self.config.clone(),
            embeddings: Embeddings {
                word: e.word.detach(),
                position: e.position.detach(),
                token_type: e.token_type.detach(),
                norm: e.norm.detached(),
            },
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    query: l.query.detached(),
                    key: l.key.detached(),
                    value: l.value.detached(),
                    attn_out: l.attn_out.detached(),
                    attn_norm: l.attn_norm.detached(),
                    ffn: l.ffn.detached(),
                    out_norm: l.out_norm.detached(),
                })
                .collect(),
            kernels: self.kernels,
        }
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.embeddings.word.dtype()
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        self.embeddings.word.device()
    }
}

/// Packed rows (each sequence's valid tokens, back to back) spread back out to
/// `[batch·seq, h]`, padding rows zero; differentiable (a gather from the rows plus one zero row).
fn unpack(x: &Tensor, lengths: &[usize], seq: usize) -> Result<Tensor> {
    let n = x.dim(0)?;
    let zero = Tensor::zeros((1, x.dim(1)?), x.dtype(), x.device())?;
    let rows = Tensor::cat(&[x, &zero], 0)?;
    let mut index = Vec::with_capacity(lengths.len() * seq);
    let mut at = 0;
    for &len in lengths {
        index.extend((0..seq).map(|j| if j < len { (at + j) as u32 } else { n as u32 }));
        at += len;
    }
    let index = Tensor::from_vec(index, lengths.len() * seq, x.device())?;
    rows.index_select(&index, 0)
}
