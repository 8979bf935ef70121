//! When to try a temporarily failed email again: exponential backoff with
//! jitter, so replicas retrying after a relay outage do not all come back in
//! the same second.

use std::time::Duration;

use rand::Rng as _;

/// How temporary failures (SMTP 4xx, connection errors) are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Longest delay between two attempts (before jitter).
    pub max: Duration,
    /// Attempts before the email is dead-lettered.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// Whether attempt number `attempt` (1 for the first) may be followed by another.
    pub fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The delay after failed attempt `attempt` (1 for the first):
    /// `base * 2^(attempt-1)` capped at `max`, then "equal jitter": half of it
    /// fixed, half random, so a retry never comes sooner than half the backoff.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let backoff = self.backoff(attempt);
        let half = backoff / 2;
        let jitter_ms = rand::rng().random_range(0..=duration_ms(backoff - half));
        half + Duration::from_millis(jitter_ms)
    }

    /// The capped exponential delay after `attempt`, before jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(MAX_DOUBLINGS);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

/// Doublings past which the backoff is surely capped (2^30 times any base
/// exceeds every allowed maximum); keeps the shift from overflowing.
const MAX_DOUBLINGS: u32 = 30;

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            max_attempts: 5,
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_maximum() {
        let policy = policy();
        let secs: Vec<u64> = (1..=8).map(|a| policy.backoff(a).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jittered_delay_stays_between_half_and_all_of_the_backoff() {
        let policy = policy();
        for attempt in 1..=8 {
            let backoff = policy.backoff(attempt);
            for _ in 0..50 {
                let delay = policy.delay_after(attempt);
                assert!(
                    delay >= backoff / 2 && delay <= backoff,
                    "{attempt}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn retries_stop_at_the_last_attempt() {
        let policy = policy();
        assert!(policy.may_retry(4));
        assert!(!policy.may_retry(5));
        assert!(!policy.may_retry(6));
    }
}
