//! Retry policy: exponential backoff with jitter that honours `Retry-After`.

use std::time::Duration;

use crate::RegistryError;

/// How often and how patiently to retry 408/429/5xx answers and connection failures.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (at least 1).
    pub max_attempts: u32,
    /// The first backoff delay; it doubles on every further attempt.
    pub base_delay: Duration,
    /// The largest backoff delay.
    pub max_delay: Duration,
    /// The largest `Retry-After` delay honoured (a longer request is cut to this).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before attempt `attempt + 1` after `attempt` failed with `err`, or `None` when
    /// the error is final or the attempts are used up.
    pub fn delay_after(&self, attempt: u32, err: &RegistryError) -> Option<Duration> {
        if !err.is_retryable() || attempt >= self.max_attempts.max(1) {
            return None;
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        // up to 25 % jitter so concurrent blobs do not retry in lockstep
        let jitter_ms = (exp.as_millis() as u64 / 4).max(1);
        let exp = exp + Duration::from_millis(rand::random::<u64>() % jitter_ms);
        Some(match err.retry_after() {
            Some(ra) => ra.min(self.max_retry_after),
            None => exp,
        })
    }
}

/// Wraps the last error of a retried operation.
pub(crate) fn exhausted(op: &str, url: &str, attempts: u32, err: RegistryError) -> RegistryError {
    if attempts <= 1 || !err.is_retryable() {
        return err;
    }
    RegistryError::RetriesExhausted {
        op: op.to_owned(),
        url: url.to_owned(),
        attempts,
        last: Box::new(err),
    }
}

/// Parses `Retry-After` as delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, ra: Option<u64>) -> RegistryError {
        RegistryError::Status {
            op: "x".into(),
            url: "u".into(),
            status: code,
            detail: String::new(),
            retry_after: ra.map(Duration::from_secs),
        }
    }

    #[test]
    fn backoff() {
        let p = RetryPolicy::default();
        assert!(p.delay_after(1, &status(404, None)).is_none());
        assert!(p.delay_after(6, &status(503, None)).is_none());
        let d1 = p.delay_after(1, &status(503, None)).unwrap();
        let d3 = p.delay_after(3, &status(503, None)).unwrap();
        assert!(d1 >= Duration::from_millis(500) && d1 < Duration::from_millis(700));
        assert!(d3 >= Duration::from_secs(2));
        let ra = p.delay_after(1, &status(429, Some(7))).unwrap();
        assert_eq!(ra, Duration::from_secs(7));
        let capped = p.delay_after(1, &status(429, Some(3600))).unwrap();
        assert_eq!(capped, Duration::from_secs(60));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
