//! Secrets: comparing API-key and agent-key digests without telling an attacker,
//! through timing, how much of a guess was right, and telling a key too weak to
//! protect member data from one that is not.

/// Shortest API or agent key accepted.
pub const MIN_KEY_LEN: usize = 24;
/// Fewest distinct characters in a key.
pub const MIN_KEY_DISTINCT_CHARS: usize = 10;
/// Longest run of one repeated character in a key.
pub const MAX_KEY_REPEAT_RUN: usize = 4;

/// Whether `key` is strong enough to stand for a tenant or an agent: long,
/// varied, not a repeated character; otherwise what is wrong with it.
pub fn check_key_strength(key: &str) -> Result<(), String> {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < MIN_KEY_LEN {
        return Err(format!(
            "the key is {} characters long; use at least {MIN_KEY_LEN} (`careline key new` makes one)",
            chars.len()
        ));
    }
    if chars.iter().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the key contains spaces or control characters".into());
    }
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_KEY_DISTINCT_CHARS {
        return Err(format!(
            "the key uses {} different characters; use at least {MIN_KEY_DISTINCT_CHARS}",
            distinct.len()
        ));
    }
    let longest_run = chars
        .chunk_by(|a, b| a == b)
        .map(<[char]>::len)
        .max()
        .unwrap_or(0);
    if longest_run > MAX_KEY_REPEAT_RUN {
        return Err(format!(
            "the key repeats one character {longest_run} times in a row; use a random key"
        ));
    }
    Ok(())
}

/// Whether `a` equals `b`, taking the same time wherever they differ. Only a length
/// mismatch returns early: the values compared are fixed-size digests, whose length
/// is no secret.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_keys_are_refused_with_the_reason() {
        let cases = [
            ("short-key-1234", Some("at least 24")),
            (
                "demo-health-key-0000000000000000",
                Some("repeats one character 16 times"),
            ),
            (
                "abababababababababababababab",
                Some("2 different characters"),
            ),
            ("a key with spaces in it, 123456", Some("spaces")),
            ("kT3x9QmV2pL7wZ4rB8nC6yH1dF5s", None),
        ];
        for (key, problem) in cases {
            match (check_key_strength(key), problem) {
                (Ok(()), None) => {}
                (Err(e), Some(p)) => assert!(e.contains(p), "{key}: {e}"),
                (result, _) => panic!("{key}: {result:?}"),
            }
        }
    }

    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        let cases: [(&[u8], &[u8], bool); 6] = [
            (b"", b"", true),
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"xbc", false),
            (b"abc", b"abcd", false),
            (b"abc", b"", false),
        ];
        for (a, b, equal) in cases {
            assert_eq!(constant_time_eq(a, b), equal, "{a:?} vs {b:?}");
        }
    }
}
