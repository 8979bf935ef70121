//! Survey links: a token `<payload>.<mac>` (both base64url) where the payload
//! names the tenant, interaction, agent, expiry and language, and the MAC is
//! HMAC-SHA256 over the payload with the newest [`LinkKeys`] key. Every key of
//! the list verifies, so keys rotate without breaking links already sent.
//! Single use is the store's job (an answered survey refuses a second answer).

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use careline_domain::Language;
use sha2::{Digest, Sha256};

use crate::SurveyError;

/// Version tag at the start of every payload.
const PAYLOAD_VERSION: &str = "v1";
/// Separator of payload fields (ids never contain it).
const FIELD_SEPARATOR: char = '|';
/// Most keys that may verify at once (the newest plus those being retired).
pub const MAX_LINK_KEYS: usize = 8;
/// Longest token accepted (ids are short; anything longer is not ours).
pub const MAX_TOKEN_LEN: usize = 1_024;
/// HMAC-SHA256 block size.
const BLOCK_LEN: usize = 64;

/// What a survey link stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub tenant: String,
    pub interaction_id: String,
    pub agent_id: String,
    /// When the link stops working, ms since the Unix epoch.
    pub expires_at_ms: i64,
    pub language: Language,
}

/// The keys that sign (the first) and verify (all) survey links.
#[derive(Clone)]
pub struct LinkKeys(Vec<Vec<u8>>);

impl std::fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKeys({} keys)", self.0.len())
    }
}

impl FromStr for LinkKeys {
    type Err = String;

    /// Comma-separated keys, newest first, each strong (`careline key new`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let keys: Vec<&str> = text.split(',').map(str::trim).collect();
        if keys.len() > MAX_LINK_KEYS {
            return Err(format!(
                "{} keys: keep at most {MAX_LINK_KEYS} (the newest first)",
                keys.len()
            ));
        }
        for (i, key) in keys.iter().enumerate() {
            careline_domain::secret::check_key_strength(key)
                .map_err(|problem| format!("survey link key {}: {problem}", i + 1))?;
        }
        Ok(LinkKeys(
            keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        ))
    }
}

impl LinkKeys {
    /// The token of `claims`, signed with the newest key.
    pub fn sign(&self, claims: &LinkClaims) -> Result<String, SurveyError> {
        for (field, value) in [
            ("tenant", &claims.tenant),
            ("interaction_id", &claims.interaction_id),
            ("agent_id", &claims.agent_id),
        ] {
            if value.contains(FIELD_SEPARATOR) {
                return Err(SurveyError::Invalid(format!(
                    "{field} contains {FIELD_SEPARATOR:?}, which survey links cannot carry"
                )));
            }
        }
        let payload = [
            PAYLOAD_VERSION,
            &claims.tenant,
            &claims.interaction_id,
            &claims.agent_id,
            &claims.expires_at_ms.to_string(),
            claims.language.as_str(),
        ]
        .join(&FIELD_SEPARATOR.to_string());
        let mac = hmac_sha256(&self.0[0], payload.as_bytes());
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(mac)
        ))
    }

    /// The claims of `token` if one of the keys signed it and it has not
    /// expired at `now_ms`. A forged token is refused before its expiry is read.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<LinkClaims, SurveyError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(SurveyError::Forged);
        }
        let (payload, mac) = token.split_once('.').ok_or(SurveyError::Forged)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| SurveyError::Forged)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| SurveyError::Forged)?;
        let signed = self.0.iter().any(|key| {
            careline_domain::secret::constant_time_eq(&hmac_sha256(key, &payload), &mac)
        });
        if !signed {
            return Err(SurveyError::Forged);
        }
        let claims = parse_payload(&payload).ok_or(SurveyError::Forged)?;
        if claims.expires_at_ms <= now_ms {
            return Err(SurveyError::Expired);
        }
        Ok(claims)
    }
}

fn parse_payload(payload: &[u8]) -> Option<LinkClaims> {
    let text = std::str::from_utf8(payload).ok()?;
    let fields: Vec<&str> = text.split(FIELD_SEPARATOR).collect();
    match fields.as_slice() {
        [
            PAYLOAD_VERSION,
            tenant,
            interaction,
            agent,
            expires,
            language,
        ] => Some(LinkClaims {
            tenant: (*tenant).to_owned(),
            interaction_id: (*interaction).to_owned(),
            agent_id: (*agent).to_owned(),
            expires_at_ms: expires.parse().ok()?,
            language: Language::from_code(language)?,
        }),
        _ => None,
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK_LEN];
    if key.len() > BLOCK_LEN {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "oldKey0123456789abcdefghijklmnop";
    const NEW: &str = "newKey0123456789ABCDEFGHIJKLMNOP";

    fn claims() -> LinkClaims {
        LinkClaims {
            tenant: "demo-health".into(),
            interaction_id: "ix-1".into(),
            agent_id: "ana".into(),
            expires_at_ms: 1_000,
            language: Language::Es,
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let keys: LinkKeys = NEW.parse().unwrap();
        let token = keys.sign(&claims()).unwrap();
        assert_eq!(keys.verify(&token, 999).unwrap(), claims());
        assert!(matches!(
            keys.verify(&token, 1_000),
            Err(SurveyError::Expired)
        ));
    }

    #[test]
    fn links_signed_with_an_older_key_verify_after_rotation_and_fail_once_it_is_dropped() {
        let before: LinkKeys = OLD.parse().unwrap();
        let token = before.sign(&claims()).unwrap();
        let rotated: LinkKeys = format!("{NEW},{OLD}").parse().unwrap();
        assert_eq!(rotated.verify(&token, 0).unwrap(), claims());
        let fresh = rotated.sign(&claims()).unwrap();
        assert!(
            matches!(before.verify(&fresh, 0), Err(SurveyError::Forged)),
            "the newest key signs"
        );
        let dropped: LinkKeys = NEW.parse().unwrap();
        assert!(matches!(
            dropped.verify(&token, 0),
            Err(SurveyError::Forged)
        ));
    }

    #[test]
    fn altered_or_malformed_tokens_are_forged_even_when_expired() {
        let keys: LinkKeys = NEW.parse().unwrap();
        let token = keys.sign(&claims()).unwrap();
        let (_, mac) = token.split_once('.').unwrap();
        let longer = URL_SAFE_NO_PAD.encode("v1|demo-health|ix-1|ana|99999999999|es");
        for forged in [
            format!("{longer}.{mac}"),
            format!("{token}x"),
            "no-dot".to_owned(),
            ".".to_owned(),
            "a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(
                matches!(keys.verify(&forged, 5_000), Err(SurveyError::Forged)),
                "{forged}"
            );
        }
    }

    #[test]
    fn weak_or_too_many_keys_are_refused_naming_the_key() {
        let err = format!("{NEW},short").parse::<LinkKeys>().unwrap_err();
        assert!(err.contains("key 2"), "{err}");
        let many = [NEW; MAX_LINK_KEYS + 1].join(",");
        assert!(many.parse::<LinkKeys>().is_err());
    }
}
