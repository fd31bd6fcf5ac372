//! When to retry an HTTP request and how long to wait first: exponential backoff with "full
//! jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015), unless the
//! server said how long with `Retry-After` (RFC 9110 §10.2.3: seconds or an HTTP date).

use rand::Rng;
use std::time::{Duration, SystemTime};

/// How often and how patiently to retry transient faults.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `retries + 1` requests at most).
    pub retries: u32,
    /// Backoff before the first retry; it doubles with each retry.
    pub base: Duration,
    /// The longest backoff drawn.
    pub max_backoff: Duration,
    /// The longest wait a `Retry-After` header can ask for; a longer one is cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Statuses worth another try: request timeout, conflict (a busy model slot), rate limits
/// and server errors. Every other 4xx is the request's fault and would fail again.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || (500..600).contains(&status)
}

/// Reads a `Retry-After` value: whole seconds, or an HTTP date (a date in the past means
/// "now"). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // Some servers send fractional seconds; RFC 9110 does not allow them, but honour them.
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): the server's `Retry-After` capped at
    /// `max_retry_after` when given, else a uniform draw from `[0, min(max_backoff, base·2^retry)]`.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max_retry_after);
        }
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max_backoff);
        let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a past date means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let p = RetryPolicy {
            retries: 10,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for retry in 0..10 {
            let ceiling = Duration::from_millis((100u64 << retry).min(1000));
            for _ in 0..50 {
                assert!(p.wait(retry, None) <= ceiling);
            }
        }
        // Full jitter spreads the waits: 200 draws are not all the same.
        let draws: std::collections::HashSet<_> = (0..200).map(|_| p.wait(3, None)).collect();
        assert!(draws.len() > 100);
        assert_eq!(
            p.wait(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.wait(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(5),
            "Retry-After is capped"
        );
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(is_retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!is_retryable(s), "{s}");
        }
    }
}
