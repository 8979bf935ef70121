//! Validated identifiers.
//!
//! Ids end up in NATS subjects (`careline.<tenant>.interaction.created`) and
//! Redis keys (`{tenant}:queue:<queue>`), so each type admits only characters
//! that are safe there: never `.`, `*`, `>` or whitespace. Parsing is the only
//! way to build one, so holding an id means it is valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Lowercase Crockford base32 alphabet (no i, l, o, u); sorts like the bits it encodes.
const BASE32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters needed for 128 bits in base32.
const BASE32_LEN: usize = 26;
/// Longest tenant, agent or queue id.
const MAX_NAME_LEN: usize = 64;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $rule:expr, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What a valid id looks like, for error messages.
            pub const RULE: &'static str = $rule;

            /// Parses and validates `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, Error> {
                let value = value.into();
                let valid: fn(&str) -> bool = $valid;
                if valid(&value) {
                    Ok($name(value))
                } else {
                    Err(Error::InvalidId { kind: $kind, value, rule: $rule })
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self, Error> {
                $name::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(value: &str) -> Result<Self, Error> {
                $name::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant (health plan): 1-64 of `[a-z0-9-]`, starting with a letter.
    TenantId,
    "tenant",
    "1-64 lowercase letters, digits or '-', starting with a letter",
    |s| {
        s.len() <= MAX_NAME_LEN
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }
);

id_type!(
    /// An agent within a tenant: 1-64 of `[A-Za-z0-9_-]`.
    AgentId,
    "agent",
    "1-64 letters, digits, '_' or '-'",
    |s| {
        (1..=MAX_NAME_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }
);

id_type!(
    /// A queue within a tenant: 1-64 of `[a-z0-9_-]`.
    QueueId,
    "queue",
    "1-64 lowercase letters, digits, '_' or '-'",
    |s| {
        (1..=MAX_NAME_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    }
);

id_type!(
    /// A contact (call, chat or email thread): `ix_` + 26 lowercase base32 characters.
    InteractionId,
    "interaction",
    "\"ix_\" followed by 26 lowercase base32 characters (digits and a-z without i, l, o, u)",
    |s| is_prefixed_base32(s, "ix_")
);

id_type!(
    /// An offer of an interaction to an agent: `of_` + 26 lowercase base32 characters.
    OfferId,
    "offer",
    "\"of_\" followed by 26 lowercase base32 characters (digits and a-z without i, l, o, u)",
    |s| is_prefixed_base32(s, "of_")
);

impl InteractionId {
    /// A new, time-ordered id (from a UUIDv7).
    pub fn generate() -> Self {
        InteractionId(format!("ix_{}", base32_uuid_v7()))
    }
}

impl OfferId {
    /// A new, time-ordered id (from a UUIDv7).
    pub fn generate() -> Self {
        OfferId(format!("of_{}", base32_uuid_v7()))
    }
}

fn is_prefixed_base32(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == BASE32_LEN && rest.bytes().all(|b| BASE32.contains(&b)))
}

/// 128 bits of a fresh UUIDv7 as 26 base32 characters, most significant first,
/// so ids generated later sort after earlier ones (to the millisecond).
fn base32_uuid_v7() -> String {
    encode_base32(uuid::Uuid::now_v7().as_u128())
}

fn encode_base32(mut bits: u128) -> String {
    let mut out = [0u8; BASE32_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE32[(bits & 0x1f) as usize];
        bits >>= 5;
    }
    out.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID_B32: &str = "01jdx5m7k2c3v4w5x6y7z8a9bc";

    #[test]
    fn tenant_ids_follow_the_rule() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        let cases: &[(&str, bool)] = &[
            ("demo-health", true),
            ("a", true),
            ("acme2", true),
            (&long, true),
            ("", false),
            (&too_long, false),
            ("Acme", false),
            ("2acme", false),
            ("-acme", false),
            ("acme_health", false),
            ("acme.health", false),
            ("acme*", false),
            ("acme>", false),
            ("acme health", false),
        ];
        for (text, ok) in cases {
            assert_eq!(text.parse::<TenantId>().is_ok(), *ok, "{text:?}");
        }
    }

    #[test]
    fn agent_ids_follow_the_rule() {
        let cases: &[(&str, bool)] = &[
            ("ana", true),
            ("Agent_07-b", true),
            ("", false),
            ("ana.b", false),
            ("ana b", false),
            ("ana*", false),
            ("ana>", false),
            ("añа", false),
        ];
        for (text, ok) in cases {
            assert_eq!(text.parse::<AgentId>().is_ok(), *ok, "{text:?}");
        }
    }

    #[test]
    fn queue_ids_follow_the_rule() {
        let cases: &[(&str, bool)] = &[
            ("general", true),
            ("tier_2-billing", true),
            ("9", true),
            ("", false),
            ("General", false),
            ("a.b", false),
            ("a\tb", false),
        ];
        for (text, ok) in cases {
            assert_eq!(text.parse::<QueueId>().is_ok(), *ok, "{text:?}");
        }
    }

    #[test]
    fn interaction_and_offer_ids_follow_the_rule() {
        let ix = format!("ix_{VALID_B32}");
        let of = format!("of_{VALID_B32}");
        let cases: &[(&str, bool, bool)] = &[
            // text, valid interaction id, valid offer id
            (&ix, true, false),
            (&of, false, true),
            ("ix_", false, false),
            ("ix_01jdx5m7k2c3v4w5x6y7z8a9b", false, false),
            ("ix_01jdx5m7k2c3v4w5x6y7z8a9bcd", false, false),
            ("ix_01JDX5M7K2C3V4W5X6Y7Z8A9BC", false, false),
            ("ix_01jdx5m7k2c3v4w5x6y7z8a9bu", false, false),
            ("IX_01jdx5m7k2c3v4w5x6y7z8a9bc", false, false),
        ];
        for (text, ix_ok, of_ok) in cases {
            assert_eq!(text.parse::<InteractionId>().is_ok(), *ix_ok, "{text:?}");
            assert_eq!(text.parse::<OfferId>().is_ok(), *of_ok, "{text:?}");
        }
    }

    #[test]
    fn errors_say_what_was_wrong_and_what_is_allowed() {
        let cases = [
            (
                "Acme Health".parse::<TenantId>().unwrap_err().to_string(),
                "tenant id \"Acme Health\" is invalid: use 1-64 lowercase letters, digits or '-', starting with a letter",
            ),
            (
                "a.b".parse::<AgentId>().unwrap_err().to_string(),
                "agent id \"a.b\" is invalid: use 1-64 letters, digits, '_' or '-'",
            ),
            (
                "Q".parse::<QueueId>().unwrap_err().to_string(),
                "queue id \"Q\" is invalid: use 1-64 lowercase letters, digits, '_' or '-'",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn generated_ids_are_valid_unique_and_time_ordered() {
        // UUIDv7 from the uuid crate is monotonic, within a millisecond too.
        let ids: Vec<InteractionId> = (0..1000).map(|_| InteractionId::generate()).collect();
        for pair in ids.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{} should sort before {}",
                pair[0],
                pair[1]
            );
        }
        let a = &ids[0];
        assert!(a.as_str().parse::<InteractionId>().is_ok(), "{a}");
        let offer = OfferId::generate();
        assert!(offer.to_string().parse::<OfferId>().is_ok(), "{offer}");
        assert_ne!(OfferId::generate(), OfferId::generate());
    }

    #[test]
    fn base32_encodes_most_significant_bits_first() {
        let cases = [
            (0u128, "00000000000000000000000000"),
            (1, "00000000000000000000000001"),
            (31, "0000000000000000000000000z"),
            (32, "00000000000000000000000010"),
            (u128::MAX, "7zzzzzzzzzzzzzzzzzzzzzzzzz"),
        ];
        for (bits, want) in cases {
            assert_eq!(encode_base32(bits), want);
        }
    }

    #[test]
    fn serde_is_transparent_and_validates() {
        let id: TenantId = serde_json::from_str("\"demo-health\"").unwrap();
        assert_eq!(id.as_ref(), "demo-health");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"demo-health\"");
        let err = serde_json::from_str::<TenantId>("\"Demo\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tenant id \"Demo\" is invalid"), "{err}");
        let id = QueueId::try_from("general".to_string()).unwrap();
        assert_eq!(String::from(id), "general");
    }
}
