//! Waiting in tests: poll a condition until a deadline instead of sleeping.
//!
//! A fixed sleep is either too short on a loaded CI machine (flaky) or too long
//! everywhere else (slow). Polling every [`POLL_INTERVAL`] until a deadline is
//! both fast and robust, and the failure names what never happened.

use std::future::Future;
use std::time::Duration;

/// How often conditions are re-checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Deadline used by [`assert_eventually!`] when none is given.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Polls `f` every [`POLL_INTERVAL`] until it returns `true`, or fails after `deadline`
/// with an error naming `what`.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if f().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= until {
            anyhow::bail!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Polls a boolean expression (which may contain `.await`) until it is true, or panics
/// with the description after the deadline (default [`DEFAULT_DEADLINE`]).
///
/// ```ignore
/// assert_eventually!(directory.get("acme").is_some(), "tenant acme visible");
/// assert_eventually!(within: Duration::from_secs(2), queue_len(&mut r).await == 0, "queue drained");
/// ```
#[macro_export]
macro_rules! assert_eventually {
    (within: $deadline:expr, $cond:expr, $($what:tt)+) => {{
        let deadline: ::std::time::Duration = $deadline;
        let until = ::tokio::time::Instant::now() + deadline;
        loop {
            if $cond {
                break;
            }
            if ::tokio::time::Instant::now() >= until {
                panic!("timed out after {:?} waiting for: {}", deadline, format!($($what)+));
            }
            ::tokio::time::sleep($crate::POLL_INTERVAL).await;
        }
    }};
    ($cond:expr, $($what:tt)+) => {
        $crate::assert_eventually!(within: $crate::DEFAULT_DEADLINE, $cond, $($what)+)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn eventually_returns_once_the_condition_holds() {
        let mut calls = 0;
        eventually(Duration::from_secs(5), "third call", || {
            calls += 1;
            std::future::ready(calls >= 3)
        })
        .await
        .unwrap();
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn eventually_fails_naming_what_never_happened() {
        let err = eventually(Duration::from_millis(50), "the moon turning blue", || {
            std::future::ready(false)
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("the moon turning blue"), "{err}");
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for: counter reaches 7")]
    async fn assert_eventually_panics_with_the_description() {
        let counter = 1;
        crate::assert_eventually!(within: Duration::from_millis(50), counter == 7, "counter reaches {}", 7);
    }
}
