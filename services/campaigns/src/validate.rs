//! Input checks with named limits; messages name the field and what to send.

use careline_domain::campaign::AttemptResult;
use careline_domain::{Language, Priority};
use careline_proto::v1;

use crate::CampaignError;

/// Longest member reference accepted.
pub const MAX_MEMBER_REF_LEN: usize = 256;
/// Longest contact hint accepted (a phone number, an address, a CRM handle).
pub const MAX_CONTACT_HINT_LEN: usize = 256;
/// Most targets one AddTargets call may carry.
pub const MAX_TARGETS_PER_CALL: usize = 500;

/// A member reference: present, short.
pub fn member_ref(value: &str) -> Result<&str, CampaignError> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_MEMBER_REF_LEN {
        return Err(CampaignError::Invalid(format!(
            "member_ref must be 1-{MAX_MEMBER_REF_LEN} bytes: the tenant's opaque member reference"
        )));
    }
    Ok(value)
}

/// A contact hint: at most [`MAX_CONTACT_HINT_LEN`] bytes (may be empty).
pub fn contact_hint(value: &str) -> Result<&str, CampaignError> {
    let value = value.trim();
    if value.len() > MAX_CONTACT_HINT_LEN {
        return Err(CampaignError::Invalid(format!(
            "contact_hint is {} bytes long; at most {MAX_CONTACT_HINT_LEN}",
            value.len()
        )));
    }
    Ok(value)
}

/// A batch size: 1 to [`MAX_TARGETS_PER_CALL`].
pub fn batch(len: usize) -> Result<(), CampaignError> {
    if len == 0 || len > MAX_TARGETS_PER_CALL {
        return Err(CampaignError::Invalid(format!(
            "targets holds {len}: send 1-{MAX_TARGETS_PER_CALL} per call"
        )));
    }
    Ok(())
}

/// A proto language, or none (UNSPECIFIED).
pub fn language(value: i32) -> Result<Option<Language>, CampaignError> {
    match v1::Language::try_from(value) {
        Ok(v1::Language::Unspecified) => Ok(None),
        Ok(v1::Language::En) => Ok(Some(Language::En)),
        Ok(v1::Language::Es) => Ok(Some(Language::Es)),
        Err(_) => Err(CampaignError::Invalid(format!(
            "language {value} is not a Language: use LANGUAGE_EN or LANGUAGE_ES"
        ))),
    }
}

/// A proto priority (UNSPECIFIED: normal).
pub fn priority(value: i32) -> Result<Priority, CampaignError> {
    match v1::Priority::try_from(value) {
        Ok(v1::Priority::Unspecified | v1::Priority::Normal) => Ok(Priority::Normal),
        Ok(v1::Priority::Low) => Ok(Priority::Low),
        Ok(v1::Priority::High) => Ok(Priority::High),
        Ok(v1::Priority::Urgent) => Ok(Priority::Urgent),
        Err(_) => Err(CampaignError::Invalid(format!(
            "priority {value} is not a Priority: use PRIORITY_LOW to PRIORITY_URGENT"
        ))),
    }
}

/// A proto attempt result; UNSPECIFIED is refused.
pub fn attempt_result(value: i32) -> Result<AttemptResult, CampaignError> {
    match v1::AttemptResult::try_from(value) {
        Ok(v1::AttemptResult::Reached) => Ok(AttemptResult::Reached),
        Ok(v1::AttemptResult::NoAnswer) => Ok(AttemptResult::NoAnswer),
        Ok(v1::AttemptResult::Busy) => Ok(AttemptResult::Busy),
        Ok(v1::AttemptResult::WrongNumber) => Ok(AttemptResult::WrongNumber),
        Ok(v1::AttemptResult::Declined) => Ok(AttemptResult::Declined),
        _ => Err(CampaignError::Invalid(
            "result must be one of ATTEMPT_RESULT_REACHED, _NO_ANSWER, _BUSY, _WRONG_NUMBER, _DECLINED".into(),
        )),
    }
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
        assert!(
            contact_hint(&"9".repeat(MAX_CONTACT_HINT_LEN + 1))
                .unwrap_err()
                .to_string()
                .contains("contact_hint")
        );
        assert!(batch(0).is_err() && batch(MAX_TARGETS_PER_CALL + 1).is_err());
        assert!(batch(MAX_TARGETS_PER_CALL).is_ok());
        assert_eq!(language(2).unwrap(), Some(Language::Es));
        assert!(language(9).unwrap_err().to_string().contains("language"));
        assert_eq!(priority(0).unwrap(), Priority::Normal);
        assert!(
            attempt_result(0)
                .unwrap_err()
                .to_string()
                .contains("result")
        );
        assert_eq!(attempt_result(3).unwrap(), AttemptResult::Busy);
    }
}
