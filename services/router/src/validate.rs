//! Request validation: every field checked against its format, its size
//! limit and the tenant's configuration, with messages a person can act on.

use careline_domain::channel::MAX_QUEUED_SINCE_AGE_MS;
use careline_domain::targets::personal_eligibility;
use careline_domain::tenant::TenantConfig;
use careline_domain::{AgentId, InteractionId, OfferId, QueueId};
use careline_proto::v1;
use careline_routing::RoutingError;
use careline_routing::convert::{channel_from_proto, language_from_proto, priority_from_proto};
use prost::Message;

use crate::error::RouterError;
use crate::intake::CreateRequest;

/// Largest member reference or idempotency key.
pub const MAX_REF_LEN: usize = 128;
/// Most context attributes.
pub const MAX_ATTRIBUTES: usize = 32;
/// Longest attribute key.
pub const MAX_ATTRIBUTE_KEY_LEN: usize = 64;
/// Longest attribute value.
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 1024;
/// Longest free text (reason, summary, notes).
pub const MAX_TEXT_LEN: usize = 4096;
/// Largest encoded context.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;
/// Most outcome tags on a resolution.
pub const MAX_OUTCOME_TAGS: usize = 16;
/// Longest external transfer destination.
pub const MAX_DESTINATION_LEN: usize = 256;
/// Furthest a pending follow-up may be set.
pub const MAX_PENDING_MS: i64 = 90 * 24 * 3600 * 1000;
/// How far ahead of this router's clock a `queued_since_ms` may be (another
/// replica's clock set it); it is then taken as now.
pub const MAX_QUEUED_SINCE_SKEW_MS: i64 = 5_000;

fn invalid(message: impl Into<String>) -> RouterError {
    RouterError::Invalid(message.into())
}

/// A queue id that exists in the tenant's configuration.
pub fn queue(config: &TenantConfig, field: &str, value: &str) -> Result<String, RouterError> {
    let id = QueueId::new(value).map_err(|e| invalid(format!("{field}: {e}")))?;
    if config.queue(id.as_str()).is_none() {
        let known: Vec<&str> = config.queues.iter().map(|q| q.id.as_str()).collect();
        return Err(invalid(format!(
            "{field}: \"{value}\" is not a queue of this tenant; known queues: {}",
            known.join(", ")
        )));
    }
    Ok(id.to_string())
}

/// A well-formed interaction id.
pub fn interaction_id(value: &str) -> Result<String, RouterError> {
    InteractionId::new(value)
        .map(|id| id.to_string())
        .map_err(|e| invalid(format!("interaction_id: {e}")))
}

/// A well-formed offer id.
pub fn offer_id(value: &str) -> Result<String, RouterError> {
    OfferId::new(value)
        .map(|id| id.to_string())
        .map_err(|e| invalid(format!("offer_id: {e}")))
}

/// An agent configured for the tenant.
pub fn agent_id(config: &TenantConfig, field: &str, value: &str) -> Result<String, RouterError> {
    let id = AgentId::new(value).map_err(|e| invalid(format!("{field}: {e}")))?;
    if config.agent(id.as_str()).is_none() {
        return Err(invalid(format!(
            "{field}: \"{value}\" is not an agent of this tenant"
        )));
    }
    Ok(id.to_string())
}

/// The agent a contact is transferred to: a well-formed id, not the sender,
/// and an agent who can take this contact (configured, speaks its language,
/// works its channel); otherwise FAILED_PRECONDITION saying why, because a
/// transfer nobody can answer would leave the member waiting.
pub fn transfer_to_agent(
    config: &TenantConfig,
    from: &str,
    to: &str,
    interaction: &v1::Interaction,
) -> Result<String, RouterError> {
    let id = AgentId::new(to).map_err(|e| invalid(format!("to_agent_id: {e}")))?;
    if id.as_str() == from {
        return Err(invalid("to_agent_id: an agent cannot transfer to itself"));
    }
    let channel = channel_from_proto(interaction.channel);
    let language = language_from_proto(interaction.language);
    let (Some(channel), Some(language)) = (channel, language) else {
        return Err(RoutingError::Corrupt(format!(
            "interaction {} has no channel or language",
            interaction.id
        ))
        .into());
    };
    personal_eligibility(config, id.as_str(), channel, language).map_err(|why| {
        RouterError::from(RoutingError::FailedPrecondition(format!(
            "to_agent_id: cannot transfer: {why}"
        )))
    })?;
    Ok(id.to_string())
}

fn text(field: &str, value: &str, max: usize) -> Result<(), RouterError> {
    if value.len() > max {
        return Err(invalid(format!(
            "{field} is {} bytes; the limit is {max}",
            value.len()
        )));
    }
    Ok(())
}

fn reference(field: &str, value: &str) -> Result<(), RouterError> {
    if value.trim().is_empty() {
        return Err(invalid(format!("{field} is required")));
    }
    text(field, value, MAX_REF_LEN)?;
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

fn context(context: &v1::InteractionContext) -> Result<(), RouterError> {
    text("context.reason", &context.reason, MAX_TEXT_LEN)?;
    text("context.summary", &context.summary, MAX_TEXT_LEN)?;
    text(
        "context.transcript_ref",
        &context.transcript_ref,
        MAX_TEXT_LEN,
    )?;
    if context.attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!(
            "context.attributes has {} entries; the limit is {MAX_ATTRIBUTES}",
            context.attributes.len()
        )));
    }
    for (key, value) in &context.attributes {
        if key.is_empty() || key.len() > MAX_ATTRIBUTE_KEY_LEN {
            return Err(invalid(format!(
                "context.attributes: keys must be 1-{MAX_ATTRIBUTE_KEY_LEN} bytes"
            )));
        }
        text(
            &format!("context.attributes[{key}]"),
            value,
            MAX_ATTRIBUTE_VALUE_LEN,
        )?;
    }
    let size = context.encoded_len();
    if size > MAX_CONTEXT_BYTES {
        return Err(invalid(format!(
            "context is {size} bytes encoded; the limit is {MAX_CONTEXT_BYTES}"
        )));
    }
    Ok(())
}

/// A create request, checked against the tenant's configuration and the
/// router's clock (`now_ms`); intake then applies the tenant's rules (text,
/// urgency, hours) to it.
pub fn create(
    config: &TenantConfig,
    request: v1::CreateInteractionRequest,
    now_ms: i64,
) -> Result<CreateRequest, RouterError> {
    let channel = channel_from_proto(request.channel).ok_or_else(|| {
        invalid("channel is required: CHANNEL_VOICE, CHANNEL_EMAIL or CHANNEL_CHAT")
    })?;
    let queue = match request.queue_id.as_str() {
        "" => None,
        id => Some(queue(config, "queue_id", id)?),
    };
    let language = match request.language {
        0 => None,
        value => {
            let language =
                language_from_proto(value).ok_or_else(|| invalid("language: unknown value"))?;
            if !config.languages.contains(&language) {
                return Err(invalid(format!(
                    "language: this tenant serves {}",
                    config
                        .languages
                        .iter()
                        .map(|l| l.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            Some(language)
        }
    };
    let priority =
        priority_from_proto(request.priority).ok_or_else(|| invalid("priority: unknown value"))?;
    reference("member_ref", &request.member_ref)?;
    reference("idempotency_key", &request.idempotency_key)?;
    let context_value = request.context.unwrap_or_default();
    context(&context_value)?;
    let queued_since_ms = queued_since(request.queued_since_ms, now_ms)?;
    Ok(CreateRequest {
        channel,
        queue,
        language,
        urgent: request.urgent || priority == careline_domain::Priority::Urgent,
        priority,
        member_ref: request.member_ref,
        context: context_value,
        idempotency_key: request.idempotency_key,
        queued_since_ms,
    })
}

/// A queue-entry time: 0 is none (now); otherwise not in the future (beyond
/// [`MAX_QUEUED_SINCE_SKEW_MS`]) and within [`MAX_QUEUED_SINCE_AGE_MS`].
fn queued_since(queued_since_ms: i64, now_ms: i64) -> Result<Option<i64>, RouterError> {
    if queued_since_ms == 0 {
        return Ok(None);
    }
    if queued_since_ms - now_ms > MAX_QUEUED_SINCE_SKEW_MS {
        return Err(invalid(format!(
            "queued_since_ms {queued_since_ms} is in the future (now is {now_ms}); pass when \
             the member first queued, or 0 for now"
        )));
    }
    if now_ms - queued_since_ms > MAX_QUEUED_SINCE_AGE_MS {
        return Err(invalid(format!(
            "queued_since_ms {queued_since_ms} is more than {} days ago; pass 0 to queue \
             the contact as new",
            MAX_QUEUED_SINCE_AGE_MS / (24 * 3600 * 1000)
        )));
    }
    Ok(Some(queued_since_ms.min(now_ms)))
}

/// Free-text notes (may be empty).
pub fn notes(value: &str) -> Result<(), RouterError> {
    text("notes", value, MAX_TEXT_LEN)
}

/// An external destination (a phone number or address).
pub fn destination(value: &str) -> Result<(), RouterError> {
    if value.trim().is_empty() {
        return Err(invalid("external_destination is empty"));
    }
    text("external_destination", value, MAX_DESTINATION_LEN)
}

/// Disposition and outcome tags of a resolution.
pub fn resolution(disposition: &str, tags: &[String]) -> Result<(), RouterError> {
    text("disposition", disposition, MAX_REF_LEN)?;
    if tags.len() > MAX_OUTCOME_TAGS {
        return Err(invalid(format!(
            "outcome_tags has {} tags; the limit is {MAX_OUTCOME_TAGS}",
            tags.len()
        )));
    }
    for tag in tags {
        let ok = (1..=64).contains(&tag.len())
            && tag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(invalid(format!(
                "outcome_tags: \"{tag}\" must be 1-64 lowercase letters, digits, '_' or '-' (e.g. appointment_scheduled)"
            )));
        }
    }
    Ok(())
}

/// A listing's time range: each side `None` when 0 (open); negative times and a
/// range ending before it starts are refused.
pub fn time_range(from_ms: i64, to_ms: i64) -> Result<(Option<i64>, Option<i64>), RouterError> {
    if from_ms < 0 || to_ms < 0 {
        return Err(invalid(
            "from_ms and to_ms: give milliseconds since the Unix epoch, or 0 for an open side",
        ));
    }
    if to_ms != 0 && from_ms > to_ms {
        return Err(invalid(format!(
            "from_ms ({from_ms}) is after to_ms ({to_ms}): swap them"
        )));
    }
    let open = |ms: i64| (ms != 0).then_some(ms);
    Ok((open(from_ms), open(to_ms)))
}

/// A pending-until time: in the future, within [`MAX_PENDING_MS`].
pub fn pending_until(until_ms: i64, now_ms: i64) -> Result<(), RouterError> {
    if until_ms <= now_ms {
        return Err(invalid(
            "until_ms must be in the future (milliseconds since the Unix epoch)",
        ));
    }
    if until_ms - now_ms > MAX_PENDING_MS {
        return Err(invalid("until_ms is more than 90 days ahead"));
    }
    Ok(())
}
