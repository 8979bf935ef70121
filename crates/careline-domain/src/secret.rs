//! Comparing secrets (API-key and agent-key digests) without telling an attacker,
//! through timing, how much of a guess was right.

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
