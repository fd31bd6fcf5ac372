//! BERT and XLM-R hyper-parameters, read from an HF `config.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::ffn::FfnConfig;

/// The key of config.json under which polydense describes what it adds to the HF
/// architecture; absent from plain HF and sentence-transformers models.
const VARIANT_KEY: &str = "polydense";

/// Which family the checkpoint belongs to; it decides how position ids are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    /// BERT (and MiniLM, mBERT): positions 0..n.
    Bert,
    /// RoBERTa / XLM-R (and multilingual-e5): positions start after the pad id.
    Roberta,
}

/// The feed-forward activation; only the exact (erf) GELU and its tanh approximation are used
/// by the encoders we target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `gelu` in HF: x·Φ(x) with the exact normal CDF.
    GeluErf,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
}

/// The hyper-parameters of a post-LN transformer encoder, as HF writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    /// BERT or RoBERTa-style position numbering.
    pub family: Family,
    /// The HF `model_type` string, written back on save.
    pub model_type: String,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the FFN's inner layer.
    pub intermediate_size: usize,
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Rows of the position-embedding table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (2 for BERT, 1 for XLM-R).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// FFN activation.
    pub hidden_act: Activation,
    /// Id of the padding token (and the RoBERTa position offset).
    pub pad_token_id: u32,
    /// The feed-forward block of each layer, when any is not BERT's dense one (config.json
    /// `polydense.ffn`); empty means dense everywhere, a plain HF model.
    #[serde(default)]
    pub ffn: Vec<FfnConfig>,
}

impl EncoderConfig {
    /// The dimension of each attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The feed-forward block of layer `n`.
    pub fn ffn_of(&self, n: usize) -> FfnConfig {
        self.ffn.get(n).cloned().unwrap_or(FfnConfig::Dense)
    }

    /// The longest input the position table allows (RoBERTa reserves pad_id + 1 rows).
    pub fn max_tokens(&self) -> usize {
        match self.family {
            Family::Bert => self.max_position_embeddings,
            Family::Roberta => self
                .max_position_embeddings
                .saturating_sub(self.pad_token_id as usize + 1),
        }
    }

    /// A tiny BERT for unit tests and finite-difference checks.
    pub fn tiny_bert() -> Self {
        EncoderConfig {
            family: Family::Bert,
            model_type: "bert".into(),
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 32,
            vocab_size: 50,
            max_position_embeddings: 32,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: Activation::GeluErf,
            pad_token_id: 0,
            ffn: Vec::new(),
        }
    }

    /// Reads `config.json` of an HF BERT / RoBERTa / XLM-R checkpoint.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingFile {
                path: path.to_path_buf(),
                hint: "an HF model directory needs config.json".into(),
            },
            _ => ModelError::io(path, e),
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ModelError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_json(&value, path)
    }

    /// Parses an already-read config.json value; `path` is only used in error messages.
    pub fn from_json(v: &serde_json::Value, path: &Path) -> Result<Self> {
        let bad = |field: &str, message: String| ModelError::Config {
            path: path.to_path_buf(),
            field: field.into(),
            message,
        };
        let int = |field: &str| -> Result<usize> {
            v.get(field)
                .and_then(|x| x.as_u64())
                .map(|x| x as usize)
                .ok_or_else(|| bad(field, "missing or not an unsigned integer".into()))
        };
        let model_type = v
            .get("model_type")
            .and_then(|x| x.as_str())
            .unwrap_or("bert")
            .to_string();
        let family = match model_type.as_str() {
            "bert" => Family::Bert,
            "roberta" | "xlm-roberta" | "camembert" => Family::Roberta,
            other => {
                return Err(bad(
                    "model_type",
                    format!("`{other}` is not a BERT or XLM-R encoder"),
                ))
            }
        };
        if let Some(pe) = v.get("position_embedding_type").and_then(|x| x.as_str()) {
            if pe != "absolute" {
                return Err(bad(
                    "position_embedding_type",
                    format!("`{pe}` (only absolute is supported)"),
                ));
            }
        }
        let hidden_act = match v
            .get("hidden_act")
            .and_then(|x| x.as_str())
            .unwrap_or("gelu")
        {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            other => return Err(bad("hidden_act", format!("`{other}` is not supported"))),
        };
        let cfg = EncoderConfig {
            family,
            model_type,
            hidden_size: int("hidden_size")?,
            num_hidden_layers: int("num_hidden_layers")?,
            num_attention_heads: int("num_attention_heads")?,
            intermediate_size: int("intermediate_size")?,
            vocab_size: int("vocab_size")?,
            max_position_embeddings: int("max_position_embeddings")?,
            type_vocab_size: v
                .get("type_vocab_size")
                .and_then(|x| x.as_u64())
                .unwrap_or(2) as usize,
            layer_norm_eps: v
                .get("layer_norm_eps")
                .and_then(|x| x.as_f64())
                .unwrap_or(1e-12),
            hidden_act,
            pad_token_id: v
                .get("pad_token_id")
                .and_then(|x| x.as_u64())
                .unwrap_or(match family {
                    Family::Bert => 0,
                    Family::Roberta => 1,
                }) as u32,
            ffn: Vec::new(),
        };
        if cfg.num_attention_heads == 0 || cfg.hidden_size % cfg.num_attention_heads != 0 {
            return Err(bad(
                "num_attention_heads",
                format!(
                    "{} heads do not divide hidden_size {}",
                    cfg.num_attention_heads, cfg.hidden_size
                ),
            ));
        }
        let mut cfg = cfg;
        if let Some(variant) = v.get(VARIANT_KEY) {
            cfg.ffn = match variant.get("ffn") {
                None => Vec::new(),
                Some(list) => serde_json::from_value(list.clone())
                    .map_err(|e| bad(&format!("{VARIANT_KEY}.ffn"), e.to_string()))?,
            };
            if !cfg.ffn.is_empty() && cfg.ffn.len() != cfg.num_hidden_layers {
                return Err(bad(
                    &format!("{VARIANT_KEY}.ffn"),
                    format!(
                        "describes {} layers, the model has {}",
                        cfg.ffn.len(),
                        cfg.num_hidden_layers
                    ),
                ));
            }
            for f in &cfg.ffn {
                if let FfnConfig::Moe(m) = f {
                    if m.experts < 2 || m.top_k == 0 || m.top_k > m.experts {
                        return Err(bad(
                            &format!("{VARIANT_KEY}.ffn"),
                            format!(
                                "{} experts with top_k {} (need at least 2 experts and 1 ≤ top_k ≤ experts)",
                                m.experts, m.top_k
                            ),
                        ));
                    }
                }
            }
            if cfg.ffn.iter().all(|f| *f == FfnConfig::Dense) {
                cfg.ffn.clear();
            }
        }
        Ok(cfg)
    }

    /// Whether the model has a block that plain HF code cannot run.
    pub fn is_variant(&self) -> bool {
        self.ffn.iter().any(|f| *f != FfnConfig::Dense)
    }

    /// The config.json to write for this encoder; fields of `base` we do not model are kept.
    pub fn to_json(&self, base: Option<&serde_json::Value>) -> serde_json::Value {
        let mut v = base
            .cloned()
            .filter(|b| b.is_object())
            .unwrap_or_else(|| serde_json::json!({}));
        let arch = match self.family {
            Family::Bert => "BertModel",
            Family::Roberta if self.model_type == "xlm-roberta" => "XLMRobertaModel",
            Family::Roberta => "RobertaModel",
        };
        let o = v.as_object_mut().expect("object checked above");
        let act = match self.hidden_act {
            Activation::GeluErf => "gelu",
            Activation::GeluTanh => "gelu_new",
        };
        for (k, x) in [
            ("architectures", serde_json::json!([arch])),
            ("model_type", self.model_type.clone().into()),
            ("hidden_size", self.hidden_size.into()),
            ("num_hidden_layers", self.num_hidden_layers.into()),
            ("num_attention_heads", self.num_attention_heads.into()),
            ("intermediate_size", self.intermediate_size.into()),
            ("vocab_size", self.vocab_size.into()),
            (
                "max_position_embeddings",
                self.max_position_embeddings.into(),
            ),
            ("type_vocab_size", self.type_vocab_size.into()),
            ("layer_norm_eps", self.layer_norm_eps.into()),
            ("hidden_act", act.into()),
            ("pad_token_id", self.pad_token_id.into()),
            ("position_embedding_type", "absolute".into()),
        ] {
            o.insert(k.to_string(), x);
        }
        o.entry("hidden_dropout_prob").or_insert(0.1.into());
        o.entry("attention_probs_dropout_prob")
            .or_insert(0.1.into());
        o.entry("initializer_range").or_insert(0.02.into());
        o.remove(VARIANT_KEY);
        if self.is_variant() {
            o.insert(
                VARIANT_KEY.into(),
                serde_json::json!({ "ffn": serde_json::to_value(&self.ffn).expect("FFN configs serialise") }),
            );
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xlmr_and_round_trips() {
        let v = serde_json::json!({
            "model_type": "xlm-roberta", "hidden_size": 384, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 1536, "vocab_size": 250037,
            "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
            "hidden_act": "gelu", "pad_token_id": 1, "bos_token_id": 0
        });
        let c = EncoderConfig::from_json(&v, Path::new("config.json")).unwrap();
        assert_eq!(c.family, Family::Roberta);
        assert_eq!(c.max_tokens(), 512);
        assert_eq!(c.head_dim(), 32);
        let back = c.to_json(Some(&v));
        assert_eq!(back["bos_token_id"], 0);
        assert_eq!(back["architectures"][0], "XLMRobertaModel");
        assert_eq!(EncoderConfig::from_json(&back, Path::new("x")).unwrap(), c);
    }

    #[test]
    fn refuses_bad_heads_and_activation() {
        let mut v = serde_json::json!({
            "model_type": "bert", "hidden_size": 10, "num_hidden_layers": 1,
            "num_attention_heads": 3, "intermediate_size": 4, "vocab_size": 5,
            "max_position_embeddings": 8
        });
        let e = EncoderConfig::from_json(&v, Path::new("c.json")).unwrap_err();
        assert!(e.to_string().contains("num_attention_heads"), "{e}");
        v["num_attention_heads"] = 2.into();
        v["hidden_act"] = "relu".into();
        let e = EncoderConfig::from_json(&v, Path::new("c.json")).unwrap_err();
        assert!(e.to_string().contains("hidden_act"), "{e}");
    }

    #[test]
    fn feed_forward_kinds_are_read_from_the_variant_section() {
        let base = serde_json::json!({
            "model_type": "bert", "hidden_size": 16, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 32, "vocab_size": 50,
            "max_position_embeddings": 32
        });
        let plain = EncoderConfig::from_json(&base, Path::new("c.json")).unwrap();
        assert!(!plain.is_variant() && plain.ffn.is_empty());
        assert!(plain.to_json(Some(&base)).get("polydense").is_none());
        // An explicit all-dense description is the plain model.
        let mut v = base.clone();
        v["polydense"] = serde_json::json!({"ffn": [{"kind": "dense"}, {"kind": "dense"}]});
        let c = EncoderConfig::from_json(&v, Path::new("c.json")).unwrap();
        assert_eq!(c, plain);
        assert_eq!(c.ffn_of(1), FfnConfig::Dense);
        // A stale section is dropped on save rather than written back.
        assert!(c.to_json(Some(&v)).get("polydense").is_none());
        v["polydense"] = serde_json::json!({"ffn": [{"kind": "dense"}]});
        let e = EncoderConfig::from_json(&v, Path::new("c.json")).unwrap_err();
        assert!(
            e.to_string()
                .contains("describes 1 layers, the model has 2"),
            "{e}"
        );
        v["polydense"] = serde_json::json!({"ffn": [{"kind": "sparse"}, {"kind": "dense"}]});
        let e = EncoderConfig::from_json(&v, Path::new("c.json")).unwrap_err();
        assert!(
            e.to_string().contains("polydense.ffn") && e.to_string().contains("sparse"),
            "{e}"
        );
    }
}
