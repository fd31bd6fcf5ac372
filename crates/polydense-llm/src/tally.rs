//! What a stage's LLM calls came to: the counts the end-of-run summary and the progress
//! line show, per stage.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counters of one stage's LLM use; they add up across batches and resumed runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Items the stage asked about.
    pub items: u64,
    /// Requests sent to the backend (cache misses), reminders included.
    pub requests: u64,
    /// Answers taken from the cache.
    pub cache_hits: u64,
    /// Transient faults the backend retried.
    pub retries: u64,
    /// Answers that could not be read (a reminder's included).
    pub parse_failures: u64,
    /// Re-asks after an unreadable answer.
    pub reminders: u64,
    /// Items left without an answer after the reminder, skipped by the stage.
    pub skipped: u64,
    /// Prompt tokens of the requests sent.
    pub prompt_tokens: u64,
    /// Tokens generated for the requests sent.
    pub completion_tokens: u64,
    /// Wall time of the stage's LLM calls, in milliseconds.
    pub wall_ms: u64,
}

impl Tally {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Tally) {
        self.items += other.items;
        self.requests += other.requests;
        self.cache_hits += other.cache_hits;
        self.retries += other.retries;
        self.parse_failures += other.parse_failures;
        self.reminders += other.reminders;
        self.skipped += other.skipped;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.wall_ms += other.wall_ms;
    }

    /// The counts by name, for stats files that hold counters of any stage.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let v = serde_json::to_value(self).expect("a tally serialises");
        v.as_object()
            .expect("a struct")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect()
    }

    /// Reads back what [`Tally::counts`] wrote; missing names count 0.
    pub fn from_counts(counts: &BTreeMap<String, u64>) -> Tally {
        let map: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
            .collect();
        let mut full = serde_json::to_value(Tally::default()).expect("serialises");
        for (k, v) in map {
            if let Some(slot) = full.get_mut(&k) {
                *slot = v;
            }
        }
        serde_json::from_value(full).unwrap_or_default()
    }

    /// One line for a progress bar: rates over `secs` seconds, hits and failures.
    pub fn status(&self, secs: f64) -> String {
        let secs = secs.max(1e-3);
        format!(
            "{:.1} req/s · {:.0} tok/s · {} cached · {} retried · {} unreadable · {} skipped",
            self.requests as f64 / secs,
            (self.prompt_tokens + self.completion_tokens) as f64 / secs,
            self.cache_hits,
            self.retries,
            self.parse_failures,
            self.skipped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_trip_and_add() {
        let t = Tally {
            items: 3,
            cache_hits: 2,
            skipped: 1,
            ..Tally::default()
        };
        let c = t.counts();
        assert_eq!(c["cache_hits"], 2);
        assert_eq!(Tally::from_counts(&c), t);
        let mut sum = t.clone();
        sum.add(&t);
        assert_eq!(sum.items, 6);
        assert!(t.status(1.0).contains("2 cached"));
    }
}
