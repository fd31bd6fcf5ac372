//! Text shared by the trainer's integration tests: a small vocabulary the hash tokenizer
//! maps to distinct ids, so queries and passages can share words on purpose.

const WORDS: [&str; 12] = [
    "river", "stone", "market", "winter", "engine", "garden", "violin", "harbor", "planet",
    "copper", "forest", "bridge",
];

/// `len` words picked deterministically from seed `i`; nearby seeds share words.
pub fn text(i: usize, len: usize) -> String {
    (0..len)
        .map(|k| WORDS[(i * 7 + k * 5 + i / 3) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}
