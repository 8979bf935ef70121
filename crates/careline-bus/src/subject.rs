//! Typed bus subjects: `careline.<tenant>.<entity>.<event>`.
//!
//! Subjects are how tenants are kept apart on the bus and how consumers select
//! what they read, so every part is checked: a `.` would shift the tenant into
//! another position, and `*`, `>` or whitespace would turn a publish into a
//! wildcard or a protocol error. Wildcards only come from [`SubjectFilter`].

use std::fmt;

use crate::BusError;

/// First token of every Careline subject.
pub const PREFIX: &str = "careline";

/// Entity token of dead-letter subjects.
pub const DEAD_LETTER_ENTITY: &str = "dlq";

/// A concrete subject to publish on: `careline.<tenant>.<entity>.<event>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    text: String,
    tenant_len: usize,
    entity_len: usize,
}

impl Subject {
    /// `careline.<tenant>.<entity>.<event>`, e.g. `careline.acme.interaction.resolved`.
    pub fn new(tenant: &str, entity: &str, event: &str) -> Result<Subject, BusError> {
        check_part("tenant", tenant)?;
        check_part("entity", entity)?;
        check_part("event", event)?;
        Ok(Subject {
            text: format!("{PREFIX}.{tenant}.{entity}.{event}"),
            tenant_len: tenant.len(),
            entity_len: entity.len(),
        })
    }

    /// Where a work-queue consumer parks what it could not handle:
    /// `careline.<tenant>.dlq.<consumer>`.
    pub fn dead_letter(tenant: &str, consumer: &str) -> Result<Subject, BusError> {
        check_part("consumer", consumer)?;
        Subject::new(tenant, DEAD_LETTER_ENTITY, consumer)
    }

    /// Parses a received subject; fails unless it is `careline.` plus three valid parts.
    pub fn parse(text: &str) -> Result<Subject, BusError> {
        let foreign = || BusError::ForeignSubject(text.to_owned());
        let mut parts = text.split('.');
        if parts.next() != Some(PREFIX) {
            return Err(foreign());
        }
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(tenant), Some(entity), Some(event), None) => {
                Subject::new(tenant, entity, event).map_err(|_| foreign())
            }
            _ => Err(foreign()),
        }
    }

    /// Every event of one tenant: `careline.<tenant>.>`.
    pub fn tenant_all(tenant: &str) -> Result<SubjectFilter, BusError> {
        check_part("tenant", tenant)?;
        Ok(SubjectFilter(format!("{PREFIX}.{tenant}.>")))
    }

    /// One entity's events across all tenants: `careline.*.<entity>.>`.
    pub fn entity_all(entity: &str) -> Result<SubjectFilter, BusError> {
        check_part("entity", entity)?;
        Ok(SubjectFilter(format!("{PREFIX}.*.{entity}.>")))
    }

    /// One kind of event across all tenants: `careline.*.<entity>.<event>`
    /// (e.g. the notification requests a work queue reads, without the status
    /// events published beside them).
    pub fn event_all(entity: &str, event: &str) -> Result<SubjectFilter, BusError> {
        check_part("entity", entity)?;
        check_part("event", event)?;
        Ok(SubjectFilter(format!("{PREFIX}.*.{entity}.{event}")))
    }

    /// The tenant part.
    pub fn tenant(&self) -> &str {
        let start = PREFIX.len() + 1;
        &self.text[start..start + self.tenant_len]
    }

    /// The entity part.
    pub fn entity(&self) -> &str {
        let start = PREFIX.len() + 1 + self.tenant_len + 1;
        &self.text[start..start + self.entity_len]
    }

    /// The event part.
    pub fn event(&self) -> &str {
        &self.text[PREFIX.len() + 1 + self.tenant_len + 1 + self.entity_len + 1..]
    }

    /// The full subject text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A subject pattern for consumers, possibly with wildcards; cannot be published to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectFilter(String);

impl SubjectFilter {
    /// Every Careline event: `careline.>`.
    pub fn all() -> SubjectFilter {
        SubjectFilter(format!("{PREFIX}.>"))
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Subject> for SubjectFilter {
    fn from(subject: Subject) -> Self {
        SubjectFilter(subject.text)
    }
}

impl fmt::Display for SubjectFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Rejects a part that NATS would read as a separator, wildcard or delimiter.
pub(crate) fn check_part(part: &'static str, value: &str) -> Result<(), BusError> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value.contains('.') {
        Some("it contains '.', which separates subject tokens")
    } else if value.contains(['*', '>']) {
        Some("it contains a wildcard ('*' or '>')")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(BusError::InvalidSubjectPart {
            part,
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_parts_make_a_four_token_subject() {
        let subject = Subject::new("acme-health", "interaction", "resolved").unwrap();
        assert_eq!(
            subject.as_str(),
            "careline.acme-health.interaction.resolved"
        );
        assert_eq!(subject.tenant(), "acme-health");
        assert_eq!(subject.entity(), "interaction");
        assert_eq!(subject.event(), "resolved");
        assert_eq!(Subject::parse(subject.as_str()).unwrap(), subject);
    }

    #[test]
    fn invalid_parts_are_rejected_naming_the_part() {
        let cases = [
            (["", "interaction", "resolved"], "tenant", "empty"),
            (["acme.evil", "interaction", "resolved"], "tenant", "'.'"),
            (["acme", "inter*", "resolved"], "entity", "wildcard"),
            (["acme", "interaction", ">"], "event", "wildcard"),
            (["acme", "interaction", ""], "event", "empty"),
            (["acme", "inter action", "resolved"], "entity", "whitespace"),
            (
                ["acme\t", "interaction", "resolved"],
                "tenant",
                "whitespace",
            ),
            (["acme", "interaction", "re\nsolved"], "event", "whitespace"),
        ];
        for ([tenant, entity, event], want_part, want_reason) in cases {
            let err = Subject::new(tenant, entity, event).unwrap_err();
            match &err {
                BusError::InvalidSubjectPart { part, reason, .. } => {
                    assert_eq!(*part, want_part, "{tenant:?}/{entity:?}/{event:?}");
                    assert!(reason.contains(want_reason), "{err}");
                }
                other => panic!("unexpected error {other:?}"),
            }
            assert!(err.to_string().contains(want_part), "{err}");
        }
    }

    #[test]
    fn filters_cover_a_tenant_or_an_entity() {
        assert_eq!(
            Subject::tenant_all("acme").unwrap().as_str(),
            "careline.acme.>"
        );
        assert_eq!(
            Subject::entity_all("interaction").unwrap().as_str(),
            "careline.*.interaction.>"
        );
        assert_eq!(SubjectFilter::all().as_str(), "careline.>");
        assert_eq!(
            Subject::event_all("notification", "requested")
                .unwrap()
                .as_str(),
            "careline.*.notification.requested"
        );
        assert!(Subject::event_all("notification", "*").is_err());
        assert!(Subject::tenant_all("a.b").is_err());
        assert!(Subject::entity_all("*").is_err());
    }

    #[test]
    fn dead_letter_subject_names_the_consumer() {
        let dlq = Subject::dead_letter("acme", "notifications").unwrap();
        assert_eq!(dlq.as_str(), "careline.acme.dlq.notifications");
        let err = Subject::dead_letter("acme", "bad.name").unwrap_err();
        assert!(err.to_string().contains("consumer"), "{err}");
    }

    #[test]
    fn foreign_subjects_do_not_parse() {
        for text in [
            "other.acme.interaction.resolved",
            "careline.acme.interaction",
            "careline.acme.interaction.resolved.extra",
            "careline.acme..resolved",
            "careline.*.interaction.resolved",
        ] {
            assert!(
                matches!(Subject::parse(text), Err(BusError::ForeignSubject(_))),
                "{text}"
            );
        }
    }
}
