//! [`Intake`]: what happens to a durable message, and the agent's side of a
//! thread. A received message is parsed, threaded onto the open interaction it
//! answers (Message-ID / In-Reply-To / References) or made a new interaction
//! through the router's API (idempotent on the Message-ID, so redeliveries and
//! replicas make one), stored for the agent, and answered automatically when
//! RFC 3834 allows. Replies go out through notifications.

use std::sync::Arc;

use careline_bus::TenantDirectory;
use careline_domain::TenantConfig;
use careline_proto::v1;

use crate::autoreply::{self, AUTO_REPLY_WINDOW};
use crate::error::EmailError;
use crate::inbox::digest;
use crate::message::{self, ParsedEmail, truncate};
use crate::router::{RouterGateway, is_open};
use crate::store::ThreadStore;

/// Most bytes of `context.summary` (the router takes 4 KiB): subject and the start of the new text.
pub const MAX_SUMMARY_BYTES: usize = 2000;
/// Longest agent reply, in bytes.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// `context.reason` of email interactions.
pub const EMAIL_REASON: &str = "email";
/// Milliseconds in a day of `email.retention_days`.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What became of a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new interaction (or the one an earlier delivery of it created).
    Created { interaction_id: String },
    /// Appended to an open interaction's thread.
    Threaded { interaction_id: String },
}

/// The email core; cheap to clone.
#[derive(Debug, Clone)]
pub struct Intake {
    pub tenants: Arc<TenantDirectory>,
    pub store: ThreadStore,
    pub router: RouterGateway,
    /// Where notification requests are published.
    pub js: async_nats::jetstream::Context,
}

/// Domain the tenant's outgoing Message-IDs use.
fn mail_domain(config: &TenantConfig) -> &str {
    config
        .inbound_email_addresses
        .first()
        .unwrap_or(&config.contact_email)
        .rsplit('@')
        .next()
        .unwrap_or("careline.invalid")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Intake {
    fn tenant(&self, tenant: &str) -> Result<Arc<TenantConfig>, EmailError> {
        self.tenants
            .get(tenant)
            .ok_or_else(|| EmailError::UnknownTenant(tenant.to_owned()))
    }

    /// Handles one durable message of `tenant`. Safe to call again for the
    /// same message (redelivery, another replica): the outcome is the same.
    pub async fn handle(
        &self,
        tenant: &str,
        received: &v1::EmailReceived,
        received_at_ms: i64,
    ) -> Result<Outcome, EmailError> {
        let config = self.tenant(tenant)?;
        let email = message::parse(&received.raw);
        let outcome = match self.open_thread(tenant, &email).await? {
            Some(interaction_id) => {
                tracing::info!(%tenant, %interaction_id, "email threaded onto its interaction");
                Outcome::Threaded { interaction_id }
            }
            None => {
                let created = self
                    .router
                    .create(tenant, create_request(&config, &email))
                    .await?;
                let interaction = created.interaction.unwrap_or_default();
                if !created.replayed {
                    self.auto_reply(&config, &email, received.null_sender, &interaction)
                        .await?;
                }
                tracing::info!(%tenant, interaction_id = %interaction.id, replayed = created.replayed, "email interaction created");
                Outcome::Created {
                    interaction_id: interaction.id,
                }
            }
        };
        let (Outcome::Threaded { interaction_id } | Outcome::Created { interaction_id }) = &outcome;
        self.store
            .record(
                tenant,
                interaction_id,
                &stored_message(&email, received_at_ms),
                email.from.as_deref(),
            )
            .await?;
        Ok(outcome)
    }

    /// The open interaction `email` answers, if any.
    async fn open_thread(
        &self,
        tenant: &str,
        email: &ParsedEmail,
    ) -> Result<Option<String>, EmailError> {
        // Its own id first: a redelivered message lands where it landed before.
        let mut ids = vec![email.message_id.clone()];
        ids.extend(email.thread_ids.iter().cloned());
        let Some(interaction_id) = self.store.interaction_of(tenant, &ids).await? else {
            return Ok(None);
        };
        match self.router.get(tenant, &interaction_id).await? {
            Some(interaction) if is_open(&interaction) => Ok(Some(interaction_id)),
            // Resolved (or gone): the member's new mail is a new contact.
            _ => Ok(None),
        }
    }

    async fn auto_reply(
        &self,
        config: &TenantConfig,
        email: &ParsedEmail,
        null_sender: bool,
        interaction: &v1::Interaction,
    ) -> Result<(), EmailError> {
        let tenant = config.id.as_str();
        if let Some(reason) =
            autoreply::suppression(email, null_sender, &config.inbound_email_addresses)
        {
            metrics::counter!("careline_email_auto_replies_suppressed_total", "reason" => reason.as_str())
                .increment(1);
            tracing::debug!(%tenant, interaction_id = %interaction.id, reason = reason.as_str(), "no automatic answer");
            return Ok(());
        }
        let Some(to) = &email.from else {
            return Ok(());
        };
        if !self
            .store
            .claim_auto_reply(tenant, to, AUTO_REPLY_WINDOW)
            .await?
        {
            metrics::counter!("careline_email_auto_replies_suppressed_total", "reason" => "rate_limited")
                .increment(1);
            return Ok(());
        }
        let template = autoreply::template(interaction.urgent, interaction.after_hours);
        let key = digest(&[b"auto", tenant.as_bytes(), email.message_id.as_bytes()]);
        let message_id = format!("auto-{}@{}", &key[..32], mail_domain(config));
        let language = language_code(interaction.language);
        let mut variables = std::collections::BTreeMap::new();
        variables.insert("tenant_name".to_owned(), config.name.clone());
        variables.insert("contact_email".to_owned(), config.contact_email.clone());
        variables.insert("portal_url".to_owned(), config.portal_url.clone());
        if let Some(message) = config.after_hours_message.get(language) {
            variables.insert("after_hours_message".to_owned(), message.clone());
        }
        let request = v1::NotificationRequested {
            notification_id: format!("email-auto:{}", &key[..40]),
            tenant_id: tenant.to_owned(),
            template: template.to_owned(),
            language: language.to_owned(),
            to_address: to.clone(),
            interaction_id: interaction.id.clone(),
            message_id: message_id.clone(),
            in_reply_to: email.message_id.clone(),
            references: references_for(&email.thread_ids, &email.message_id),
            subject: reply_subject(&email.subject),
            body: String::new(),
            variables: variables.into_iter().collect(),
        };
        self.request_notification(&request).await?;
        metrics::counter!("careline_email_auto_replies_total", "template" => template).increment(1);
        let outgoing = v1::EmailMessage {
            message_id,
            direction: v1::EmailDirection::Outbound as i32,
            subject: request.subject.clone(),
            body: format!("[automatic answer: {template}]"),
            received_at_ms: now_ms(),
            ..Default::default()
        };
        self.store
            .record(tenant, &interaction.id, &outgoing, None)
            .await
    }

    /// Sends `body` from the tenant's address as `agent_id`'s answer on the
    /// interaction's email thread; the member's answer to it threads back.
    pub async fn reply(
        &self,
        tenant: &str,
        interaction_id: &str,
        agent_id: &str,
        body: &str,
    ) -> Result<v1::ReplyEmailResponse, EmailError> {
        let config = self.tenant(tenant)?;
        let meta = self
            .store
            .meta(tenant, interaction_id)
            .await?
            .filter(|meta| !meta.member_address.is_empty())
            .ok_or_else(|| EmailError::NoThread(interaction_id.to_owned()))?;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let message_id = format!("reply-{id}@{}", mail_domain(&config));
        let in_reply_to = meta.references.last().cloned().unwrap_or_default();
        let language = self
            .router
            .get(tenant, interaction_id)
            .await?
            .map(|interaction| language_code(interaction.language))
            .unwrap_or_default();
        let request = v1::NotificationRequested {
            notification_id: format!("email-reply:{id}"),
            tenant_id: tenant.to_owned(),
            template: "agent_reply".to_owned(),
            language: language.to_owned(),
            to_address: meta.member_address.clone(),
            interaction_id: interaction_id.to_owned(),
            message_id: message_id.clone(),
            in_reply_to,
            references: meta.references.clone(),
            subject: reply_subject(&meta.subject),
            body: body.to_owned(),
            variables: Default::default(),
        };
        // Recorded first: the member may answer before the send is confirmed.
        let outgoing = v1::EmailMessage {
            message_id: message_id.clone(),
            direction: v1::EmailDirection::Outbound as i32,
            subject: request.subject.clone(),
            body: body.to_owned(),
            full_body: body.to_owned(),
            received_at_ms: now_ms(),
            agent_id: agent_id.to_owned(),
            ..Default::default()
        };
        self.store
            .record(tenant, interaction_id, &outgoing, None)
            .await?;
        self.request_notification(&request).await?;
        tracing::info!(%tenant, %interaction_id, %agent_id, "agent reply requested");
        Ok(v1::ReplyEmailResponse {
            message_id,
            notification_id: request.notification_id,
        })
    }

    /// `interaction_id` ended (resolved, abandoned, transferred out) at
    /// `ended_at_ms`: its thread expires the tenant's `email.retention_days`
    /// later (0: now). Safe to call again (redelivery, another replica).
    pub async fn ended(
        &self,
        tenant: &str,
        interaction_id: &str,
        ended_at_ms: i64,
    ) -> Result<(), EmailError> {
        let config = self.tenant(tenant)?;
        let retention_days = config.email.retention_days;
        // Counted from the end, never from later than now (a clock ahead of
        // this one must not lengthen the retention).
        let now = now_ms();
        let ended_at_ms = if ended_at_ms > 0 {
            ended_at_ms.min(now)
        } else {
            now
        };
        let expire_at_ms = ended_at_ms.saturating_add(i64::from(retention_days) * DAY_MS);
        self.store.end(tenant, interaction_id, expire_at_ms).await?;
        tracing::info!(%tenant, %interaction_id, retention_days, "email thread expires after its retention");
        Ok(())
    }

    /// Asks notifications for one email, once per notification id.
    async fn request_notification(
        &self,
        request: &v1::NotificationRequested,
    ) -> Result<(), EmailError> {
        careline_bus::notification::publish_request(&self.js, request, &request.notification_id)
            .await
            .map_err(|error| match error {
                careline_bus::BusError::InvalidSubjectPart { .. } => {
                    EmailError::Invalid(error.to_string())
                }
                error => EmailError::Bus(error.to_string()),
            })
    }

    /// The interaction's email thread.
    pub async fn thread(
        &self,
        tenant: &str,
        interaction_id: &str,
    ) -> Result<v1::EmailThread, EmailError> {
        self.tenant(tenant)?;
        let messages = self.store.thread(tenant, interaction_id).await?;
        if messages.is_empty() {
            return Err(EmailError::NoThread(interaction_id.to_owned()));
        }
        Ok(v1::EmailThread {
            interaction_id: interaction_id.to_owned(),
            messages,
        })
    }
}

/// `en` / `es` for a proto language; empty when unspecified.
fn language_code(language: i32) -> &'static str {
    match v1::Language::try_from(language) {
        Ok(v1::Language::En) => "en",
        Ok(v1::Language::Es) => "es",
        _ => "",
    }
}

/// `Re: subject`, without stacking prefixes.
fn reply_subject(subject: &str) -> String {
    let lower = subject.trim_start().to_lowercase();
    if lower.starts_with("re:") || lower.starts_with("rv:") {
        subject.to_owned()
    } else {
        format!("Re: {subject}")
    }
}

/// References of an answer: the message's own ancestors, oldest first, then the message.
fn references_for(thread_ids: &[String], message_id: &str) -> Vec<String> {
    let mut references: Vec<String> = thread_ids.iter().rev().cloned().collect();
    references.push(message_id.to_owned());
    references
}

fn stored_message(email: &ParsedEmail, received_at_ms: i64) -> v1::EmailMessage {
    v1::EmailMessage {
        message_id: email.message_id.clone(),
        direction: v1::EmailDirection::Inbound as i32,
        subject: email.subject.clone(),
        body: email.new_text.clone(),
        full_body: email.text.clone(),
        attachments: email
            .attachments
            .iter()
            .map(|a| v1::EmailAttachment {
                file_name: a.file_name.clone(),
                content_type: a.content_type.clone(),
                size_bytes: a.size_bytes,
            })
            .collect(),
        received_at_ms,
        agent_id: String::new(),
    }
}

/// What the router reads of a new email (`context.summary`, which it
/// classifies): the subject and the start of the new text, without quoted
/// history or signature, at most [`MAX_SUMMARY_BYTES`].
pub fn summary(email: &ParsedEmail) -> String {
    let text = if email.subject.is_empty() {
        email.new_text.clone()
    } else {
        format!("{}\n\n{}", email.subject, email.new_text)
    };
    truncate(text, MAX_SUMMARY_BYTES)
}

/// The router request for a new email interaction. The router classifies the
/// summary (language, urgency); the member is an opaque digest of the sender.
fn create_request(config: &TenantConfig, email: &ParsedEmail) -> v1::CreateInteractionRequest {
    let sender = email.from.as_deref().unwrap_or("");
    let message_digest = digest(&[config.id.as_bytes(), email.message_id.as_bytes()]);
    v1::CreateInteractionRequest {
        channel: v1::Channel::Email as i32,
        queue_id: config.email_queue().unwrap_or_default().to_owned(),
        member_ref: format!(
            "email-{}",
            &digest(&[config.id.as_bytes(), sender.as_bytes()])[..32]
        ),
        idempotency_key: format!("email:{}", &message_digest[..48]),
        context: Some(v1::InteractionContext {
            reason: EMAIL_REASON.to_owned(),
            summary: summary(email),
            transcript_ref: format!("email-intake:{}", &message_digest[..32]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_is_idempotent_on_the_message_id_and_opaque() {
        let config = careline_domain::TenantConfig::from_yaml(include_str!(
            "../../../deploy/tenants/demo-health.yaml"
        ))
        .unwrap();
        let email = message::parse(
            b"Message-ID: <m1@member.example>\r\nFrom: Pat <pat@member.example>\r\nSubject: Card\r\n\r\nWhere is my card?\r\n\r\nOn Mon, X wrote:\r\n> old",
        );
        let first = create_request(&config, &email);
        assert_eq!(first, create_request(&config, &email));
        assert_eq!(first.queue_id, "general");
        assert_eq!(first.channel, v1::Channel::Email as i32);
        let context = first.context.unwrap();
        assert_eq!(context.summary, "Card\n\nWhere is my card?");
        assert!(!first.member_ref.contains("pat"));
        assert!(first.idempotency_key.len() <= 128);
    }

    #[test]
    fn reply_subjects_do_not_stack() {
        assert_eq!(reply_subject("Card"), "Re: Card");
        assert_eq!(reply_subject("RE: Card"), "RE: Card");
    }

    #[test]
    fn summary_is_bounded_for_the_router() {
        let config = careline_domain::TenantConfig::from_yaml(include_str!(
            "../../../deploy/tenants/demo-health.yaml"
        ))
        .unwrap();
        let body = format!("Subject: s\r\n\r\n{}", "ñ".repeat(10_000));
        let request = create_request(&config, &message::parse(body.as_bytes()));
        assert!(request.context.unwrap().summary.len() <= MAX_SUMMARY_BYTES);
    }
}
