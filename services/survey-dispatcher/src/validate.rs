//! Input checks with named limits; messages name the field and what to send.

use careline_domain::Language;
use careline_domain::survey::MAX_COMMENT_CHARS;

use crate::SurveyError;

/// Longest member reference accepted.
pub const MAX_MEMBER_REF_LEN: usize = 256;
/// Longest email address (RFC 5321 path limit).
pub const MAX_ADDRESS_LEN: usize = 254;

/// A member reference: present, short.
pub fn member_ref(value: &str) -> Result<&str, SurveyError> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_MEMBER_REF_LEN {
        return Err(SurveyError::Invalid(format!(
            "member_ref must be 1-{MAX_MEMBER_REF_LEN} bytes: the tenant's opaque member reference"
        )));
    }
    Ok(value)
}

/// An email address: one `@` with text on both sides, no spaces, short.
pub fn address(value: &str) -> Result<&str, SurveyError> {
    let value = value.trim();
    if value.len() > MAX_ADDRESS_LEN
        || value.contains(char::is_whitespace)
        || !careline_domain::tenant::is_email_like(value)
    {
        return Err(SurveyError::Invalid(format!(
            "email_address is not one email address (local@domain, at most {MAX_ADDRESS_LEN} bytes)"
        )));
    }
    Ok(value)
}

/// A language code, or none (the tenant's first language).
pub fn language(value: &str) -> Result<Option<Language>, SurveyError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    Language::from_code(value)
        .map(Some)
        .ok_or_else(|| SurveyError::Invalid(format!("language {value:?}: use \"en\" or \"es\"")))
}

/// A comment: at most [`MAX_COMMENT_CHARS`] characters, trimmed.
pub fn comment(value: &str) -> Result<&str, SurveyError> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars > MAX_COMMENT_CHARS {
        return Err(SurveyError::Invalid(format!(
            "the comment is {chars} characters long; shorten it to {MAX_COMMENT_CHARS}"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_outside_their_limits_are_refused_naming_the_field() {
        assert!(member_ref("m-1").is_ok());
        assert!(
            member_ref(" ")
                .unwrap_err()
                .to_string()
                .contains("member_ref")
        );
        assert!(address("pat@member.example").is_ok());
        for bad in ["pat", "pat@", "a b@c.d", "a@b@c"] {
            assert!(
                address(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("email_address"),
                "{bad}"
            );
        }
        assert_eq!(language("ES").unwrap(), Some(Language::Es));
        assert_eq!(language("").unwrap(), None);
        assert!(
            language("fr")
                .unwrap_err()
                .to_string()
                .contains("\"en\" or \"es\"")
        );
        assert!(comment(&"x".repeat(MAX_COMMENT_CHARS)).is_ok());
        assert!(comment(&"é".repeat(MAX_COMMENT_CHARS + 1)).is_err());
    }
}
