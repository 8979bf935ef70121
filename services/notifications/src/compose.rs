//! Turns a [`NotificationRequested`] and its tenant's configuration into one
//! RFC 5322 email: the tenant's address as sender, the member as recipient,
//! Message-ID / In-Reply-To / References so a reply threads onto the same
//! interaction, a text part and its HTML alternative.

use std::collections::BTreeMap;

use careline_domain::{Language, TenantConfig};
use careline_proto::v1::NotificationRequested;
use lettre::Message;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use crate::error::Permanent;
use crate::templates::{TemplateKind, Templates};

/// Header naming the notification an email was sent for (lets email-intake
/// and people reading a mailbox tie it back; it carries only the id).
pub const NOTIFICATION_ID_HEADER: &str = "X-Careline-Notification-Id";
/// Longest message id accepted in Message-ID, In-Reply-To or References.
pub const MAX_MESSAGE_ID_LEN: usize = 256;
/// Most References kept (the newest): a long thread must not grow the header without bound.
pub const MAX_REFERENCES: usize = 50;

/// Builds the email for `request`.
pub fn compose(
    request: &NotificationRequested,
    tenant: &TenantConfig,
    templates: &Templates,
) -> Result<Message, Permanent> {
    let kind = TemplateKind::parse(&request.template)
        .ok_or_else(|| Permanent::UnknownTemplate(request.template.clone()))?;
    let language = language_of(request, tenant);
    let rendered = templates.render(
        kind,
        language,
        &variables(request, tenant, language),
        &request.subject,
        tenant.email.template(kind.as_str(), language),
    )?;
    let to: Mailbox = request
        .to_address
        .trim()
        .parse()
        .map_err(|_| Permanent::InvalidRecipient)?;
    let from = sender(tenant)?;
    let own_id = if request.message_id.is_empty() {
        let domain = from.email.domain().to_owned();
        format!("{}@{domain}", request.notification_id)
    } else {
        message_id("message_id", &request.message_id)?
    };
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(rendered.subject)
        .message_id(Some(format!("<{own_id}>")))
        .header(NotificationId(request.notification_id.clone()));
    if !request.in_reply_to.is_empty() {
        builder = builder.in_reply_to(format!(
            "<{}>",
            message_id("in_reply_to", &request.in_reply_to)?
        ));
    }
    let skip = request.references.len().saturating_sub(MAX_REFERENCES);
    let mut references = Vec::new();
    for reference in request.references.iter().skip(skip) {
        references.push(format!("<{}>", message_id("references", reference)?));
    }
    if !references.is_empty() {
        builder = builder.references(references.join(" "));
    }
    if let Some(value) = kind.auto_submitted() {
        builder = builder.header(AutoSubmitted(value.to_owned()));
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(rendered.text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(rendered.html),
                ),
        )
        .map_err(|error| Permanent::Build(error.to_string()))
}

/// The requested language; else the tenant's first; else English.
fn language_of(request: &NotificationRequested, tenant: &TenantConfig) -> Language {
    match request.language.trim().to_ascii_lowercase().as_str() {
        "en" => Language::En,
        "es" => Language::Es,
        _ => tenant.languages.first().copied().unwrap_or(Language::En),
    }
}

/// The tenant's name at its first inbound address (so the member's reply
/// comes back to email-intake), else at its contact address.
fn sender(tenant: &TenantConfig) -> Result<Mailbox, Permanent> {
    let address = tenant
        .inbound_email_addresses
        .first()
        .unwrap_or(&tenant.contact_email);
    let email = address
        .trim()
        .parse()
        .map_err(|_| Permanent::InvalidSender)?;
    Ok(Mailbox::new(Some(tenant.name.clone()), email))
}

/// What the templates may use: the request's own variables, then the
/// tenant's facts and the request fields, which win over variables of the
/// same name.
fn variables(
    request: &NotificationRequested,
    tenant: &TenantConfig,
    language: Language,
) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = request.variables.clone().into_iter().collect();
    let facts = [
        ("tenant_name", tenant.name.clone()),
        ("contact_email", tenant.contact_email.clone()),
        ("portal_url", tenant.portal_url.clone()),
        ("hours", tenant.hours().describe()),
        (
            "after_hours_message",
            tenant.after_hours_message(language).to_owned(),
        ),
        ("interaction_id", request.interaction_id.clone()),
        ("body", request.body.clone()),
    ];
    for (name, value) in facts {
        vars.insert(name.to_owned(), value);
    }
    vars
}

/// A message id without its angle brackets, checked to be `local@domain`
/// with no whitespace, brackets or control characters (else it could break
/// the header or inject another).
fn message_id(field: &'static str, value: &str) -> Result<String, Permanent> {
    let id = value.trim().trim_start_matches('<').trim_end_matches('>');
    let valid = id.len() <= MAX_MESSAGE_ID_LEN
        && id
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>'));
    if valid {
        Ok(id.to_owned())
    } else {
        Err(Permanent::InvalidMessageId(field))
    }
}

/// `Auto-Submitted` (RFC 3834): tells the member's mail system not to answer it automatically.
#[derive(Debug, Clone)]
struct AutoSubmitted(String);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(value.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// [`NOTIFICATION_ID_HEADER`].
#[derive(Debug, Clone)]
struct NotificationId(String);

impl Header for NotificationId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(NOTIFICATION_ID_HEADER)
    }

    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(value.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> NotificationRequested {
        NotificationRequested {
            notification_id: "n-1".into(),
            tenant_id: "demo-health".into(),
            template: "agent_reply".into(),
            language: "es".into(),
            to_address: "member@example.org".into(),
            interaction_id: "ix-1".into(),
            in_reply_to: "<abc@mail.example.org>".into(),
            references: vec![
                "root@mail.example.org".into(),
                "abc@mail.example.org".into(),
            ],
            body: "Su reclamo fue aprobado.".into(),
            ..Default::default()
        }
    }

    fn formatted(message: &Message) -> String {
        String::from_utf8(message.formatted()).unwrap()
    }

    #[test]
    fn email_threads_onto_the_members_message_from_the_tenants_address() {
        let tenant = careline_domain::tenant::TenantConfig::from_yaml(include_str!(
            "../../../deploy/tenants/demo-health.yaml"
        ))
        .unwrap();
        let email = formatted(&compose(&request(), &tenant, &Templates::defaults()).unwrap());
        assert!(
            email.contains("From: \"Demo Health Plan\" <members@demo-health.example>"),
            "{email}"
        );
        assert!(email.contains("To: member@example.org"), "{email}");
        assert!(
            email.contains("Message-ID: <n-1@demo-health.example>"),
            "{email}"
        );
        assert!(
            email.contains("In-Reply-To: <abc@mail.example.org>"),
            "{email}"
        );
        assert!(
            email.contains("References: <root@mail.example.org> <abc@mail.example.org>"),
            "{email}"
        );
        assert!(email.contains("multipart/alternative"), "{email}");
        assert!(email.contains("X-Careline-Notification-Id: n-1"), "{email}");
        assert!(!email.contains("Auto-Submitted"), "{email}");
    }

    /// An edit that makes a valid request invalid.
    type Change = fn(&mut NotificationRequested);

    #[test]
    fn bad_fields_are_permanent_failures_naming_the_field() {
        let tenant = careline_domain::tenant::TenantConfig::from_yaml(include_str!(
            "../../../deploy/tenants/demo-health.yaml"
        ))
        .unwrap();
        let templates = Templates::defaults();
        let cases: [(Change, Permanent); 4] = [
            (
                |r| r.template = "newsletter".into(),
                Permanent::UnknownTemplate("newsletter".into()),
            ),
            (
                |r| r.to_address = "not an address".into(),
                Permanent::InvalidRecipient,
            ),
            (
                |r| r.in_reply_to = "a@b>\r\nBcc: x@y".into(),
                Permanent::InvalidMessageId("in_reply_to"),
            ),
            (
                |r| r.references = vec!["no-at-sign".into()],
                Permanent::InvalidMessageId("references"),
            ),
        ];
        for (change, want) in cases {
            let mut request = request();
            change(&mut request);
            assert_eq!(compose(&request, &tenant, &templates).unwrap_err(), want);
        }
    }

    #[test]
    fn unknown_language_falls_back_to_the_tenants_first() {
        let tenant = careline_domain::tenant::TenantConfig::from_yaml(include_str!(
            "../../../deploy/tenants/demo-health.yaml"
        ))
        .unwrap();
        let mut request = request();
        request.language = "fr".into();
        assert_eq!(language_of(&request, &tenant), Language::En);
        request.language = "ES".into();
        assert_eq!(language_of(&request, &tenant), Language::Es);
    }
}
