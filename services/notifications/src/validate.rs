//! Checks on what callers and producers send, with named limits.

use crate::error::NotificationError;

/// Longest notification id.
pub const MAX_NOTIFICATION_ID_LEN: usize = 128;
/// Dead letters listed when the request asks for none in particular.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Most dead letters listed at once.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A notification id is 1-128 of `[A-Za-z0-9._:-]`: it becomes part of a
/// Redis key, a NATS dedupe id and a Message-ID.
pub fn notification_id(id: &str) -> Result<(), NotificationError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_NOTIFICATION_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(NotificationError::Invalid(format!(
            "notification_id must be 1 to {MAX_NOTIFICATION_ID_LEN} characters of A-Z, a-z, 0-9, \
             '.', '_', ':' or '-'"
        )))
    }
}

/// The page size to use: 0 means the default; more than the maximum is refused.
pub fn page_size(requested: u32) -> Result<usize, NotificationError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE as usize),
        n if n <= MAX_PAGE_SIZE => Ok(n as usize),
        n => Err(NotificationError::Invalid(format!(
            "page_size {n} is too large: use 1 to {MAX_PAGE_SIZE} (0 for {DEFAULT_PAGE_SIZE})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_are_checked_naming_the_field() {
        for good in ["n-1", "acme:1764201600123-0", "a.b_c"] {
            assert!(notification_id(good).is_ok(), "{good}");
        }
        let too_long = "x".repeat(MAX_NOTIFICATION_ID_LEN + 1);
        for bad in ["", "has space", "a>b", "new\nline", too_long.as_str()] {
            let error = notification_id(bad).unwrap_err();
            assert!(error.to_string().contains("notification_id"), "{error}");
        }
    }

    #[test]
    fn page_size_defaults_and_is_bounded() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE as usize);
        assert_eq!(page_size(5).unwrap(), 5);
        assert!(
            page_size(MAX_PAGE_SIZE + 1)
                .unwrap_err()
                .to_string()
                .contains("page_size")
        );
    }
}
