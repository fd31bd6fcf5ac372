//! Numerical perturbation: every number of the answer sentence gets another value, written
//! in the digits of its own script (Arabic-Indic, Devanagari and Thai digits as well as
//! ASCII), so "built in 1889" becomes "built in 1893" and "١٨٨٩" becomes "١٨٩٣".
//!
//! Years (four digits, 1000-2099) move by 1-30 years; other numbers change by 10-60% (at
//! least 1) with their digit count kept where it can be; the same number gets the same
//! replacement everywhere in the passage. A number with group separators ("1,000",
//! "1.000") changes in its leading group only, so the separators stay valid.

use rand::Rng;
use std::collections::HashMap;

/// The zero of every decimal digit block read here: ASCII, Arabic-Indic, Extended
/// Arabic-Indic (Persian, Urdu), Devanagari, Bengali, Gurmukhi, Gujarati, Tamil, Telugu,
/// Kannada, Malayalam, Thai, Lao, Tibetan, Myanmar, Khmer, Mongolian and fullwidth.
const ZEROS: [u32; 18] = [
    0x30, 0x660, 0x6F0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xE50, 0xED0,
    0xF20, 0x1040, 0x17E0, 0x1810, 0xFF10,
];

/// The script zero and the value of a decimal digit of any block in [`ZEROS`].
pub fn digit(c: char) -> Option<(u32, u32)> {
    let u = c as u32;
    ZEROS
        .iter()
        .find(|&&z| (z..z + 10).contains(&u))
        .map(|&z| (z, u - z))
}

/// `value` written with `digits` digits (left-padded with zeros) of the block at `zero`.
fn write(value: u64, digits: usize, zero: u32) -> String {
    format!("{value:0digits$}")
        .chars()
        .map(|c| char::from_u32(zero + c.to_digit(10).expect("decimal")).expect("a digit"))
        .collect()
}

/// A run of digits of one script, by byte offsets in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitRun {
    /// Byte offset of the first digit.
    pub start: usize,
    /// Byte offset after the last digit.
    pub end: usize,
    /// The script's zero.
    pub zero: u32,
    /// Its value (saturating: a run of 19 digits or more is left alone).
    pub value: Option<u64>,
    /// Whether it continues a number after a group separator ("000" in "1,000").
    pub continues: bool,
}

/// The maximal digit runs of `text`, in order.
pub fn digit_runs(text: &str) -> Vec<DigitRun> {
    let mut runs: Vec<DigitRun> = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let Some((zero, d)) = digit(c) else { continue };
        let mut end = i + c.len_utf8();
        let mut value = Some(d as u64);
        while let Some(&(j, n)) = chars.peek() {
            match digit(n) {
                Some((z, d)) if z == zero => {
                    value = value
                        .and_then(|v| v.checked_mul(10))
                        .and_then(|v| v.checked_add(d as u64));
                    end = j + n.len_utf8();
                    chars.next();
                }
                _ => break,
            }
        }
        // "1,000", "1.000", "١٬٠٠٠": a separator between two runs of the same script.
        let continues = runs.last().is_some_and(|p: &DigitRun| {
            p.zero == zero
                && text[p.end..i].chars().count() == 1
                && matches!(
                    &text[p.end..i],
                    "," | "." | "\u{66B}" | "\u{66C}" | "'" | "\u{A0}"
                )
        });
        runs.push(DigitRun {
            start: i,
            end,
            zero,
            value,
            continues,
        });
    }
    runs
}

/// A different value for `value`, written with `digits` digits.
fn perturbed(value: u64, digits: usize, rng: &mut impl Rng) -> u64 {
    if digits == 4 && (1000..2100).contains(&value) {
        let delta = rng.random_range(1..=30u64);
        return if rng.random_bool(0.5) && value - delta >= 1000 {
            value - delta
        } else {
            value + delta
        };
    }
    if value < 10 && digits == 1 {
        // One digit: any other of 1-9 (0 stays out: "0 goals" reads as a different claim).
        let v = rng.random_range(1..9u64);
        return if v >= value { v + 1 } else { v };
    }
    let step = ((value as f64) * rng.random_range(0.1..0.6))
        .round()
        .max(1.0) as u64;
    let max = 10u64
        .saturating_pow(digits as u32)
        .saturating_sub(1)
        .max(value + step);
    let up = value.saturating_add(step);
    if rng.random_bool(0.5) && value >= step && value - step > 0 {
        value - step
    } else if up <= max {
        up
    } else {
        value - step.min(value)
    }
}

/// `text` with every number in `span` (byte offsets) changed, and the edits made
/// (`"1889→1893"`); `None` when the span holds no number.
pub fn perturb_numbers(
    text: &str,
    span: std::ops::Range<usize>,
    rng: &mut impl Rng,
) -> Option<(String, Vec<String>)> {
    let runs: Vec<DigitRun> = digit_runs(text)
        .into_iter()
        .filter(|r| !r.continues && r.start >= span.start && r.end <= span.end)
        .filter(|r| r.value.is_some())
        .collect();
    if runs.is_empty() {
        return None;
    }
    let mut map: HashMap<(u32, u64, usize), u64> = HashMap::new();
    let mut edits = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in runs {
        let value = r.value.expect("filtered");
        let digits = text[r.start..r.end].chars().count();
        let new = *map.entry((r.zero, value, digits)).or_insert_with(|| {
            let new = perturbed(value, digits, rng);
            edits.push(format!(
                "{}→{}",
                &text[r.start..r.end],
                write(new, digits, r.zero)
            ));
            new
        });
        out.push_str(&text[at..r.start]);
        out.push_str(&write(new, digits, r.zero));
        at = r.end;
    }
    out.push_str(&text[at..]);
    Some((out, edits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn run(text: &str, seed: u64) -> (String, Vec<String>) {
        perturb_numbers(text, 0..text.len(), &mut ChaCha8Rng::seed_from_u64(seed)).unwrap()
    }

    #[test]
    fn digits_of_every_script_are_read_with_their_value() {
        assert_eq!(digit('7'), Some((0x30, 7)));
        assert_eq!(digit('٧'), Some((0x660, 7)));
        assert_eq!(digit('७'), Some((0x966, 7)));
        assert_eq!(digit('๗'), Some((0xE50, 7)));
        assert_eq!(digit('x'), None);
        let runs = digit_runs("in १८८९ and 1,000");
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].value, Some(1889));
        assert!(!runs[1].continues && runs[2].continues);
    }

    #[test]
    fn years_move_by_a_few_years_and_keep_their_script() {
        for seed in 0..20 {
            let (out, edits) = run("The tower was built in 1889.", seed);
            let year: u64 = out[23..27].parse().unwrap();
            assert!(year != 1889 && (1859..=1919).contains(&year), "{out}");
            assert_eq!(edits.len(), 1);
            let (out, _) = run("بني البرج عام ١٨٨٩.", seed);
            assert!(
                !out.contains("١٨٨٩")
                    && out
                        .chars()
                        .filter(|c| digit(*c).is_some_and(|d| d.0 == 0x660))
                        .count()
                        == 4,
                "{out}"
            );
            let (out, _) = run("मीनार १८८९ में बनी।", seed);
            assert!(!out.contains("१८८९") && out.contains("में बनी।"), "{out}");
            let (out, _) = run("หอคอยสร้างในปี ๒๔๓๒", seed);
            assert!(
                !out.contains("๒๔๓๒") && out.starts_with("หอคอยสร้างในปี "),
                "{out}"
            );
        }
    }

    #[test]
    fn a_repeated_number_changes_alike_and_separated_groups_stay_valid() {
        let (out, _) = run("7 of 7 members; 1,000 people", 3);
        let sevens: Vec<&str> = out.split(' ').take(3).collect();
        assert_eq!(sevens[0], sevens[2], "{out}");
        assert_ne!(sevens[0], "7");
        assert!(out.ends_with(",000 people"), "{out}");
        assert_ne!(out, "7 of 7 members; 1,000 people");
        assert!(
            perturb_numbers("no numbers here", 0..15, &mut ChaCha8Rng::seed_from_u64(1)).is_none()
        );
        // Only numbers inside the span change.
        let text = "In 1900 it opened; in 1950 it closed.";
        let (out, _) =
            perturb_numbers(text, 19..text.len(), &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert!(
            out.starts_with("In 1900 it opened;") && !out.contains("1950"),
            "{out}"
        );
    }
}
