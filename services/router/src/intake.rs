//! Taking a new interaction in. Its text (`context.reason`, `context.summary`)
//! is classified first ([`careline_domain::classify`]): an urgent phrase
//! makes it urgent, a clear language is used when the caller named none, and
//! a topic rule picks its queue when the caller named none. Urgent contacts
//! jump to the top priority (and the tenant's urgent queue, if it has one).
//! Outside the hours of the queue it goes to (its own, else the tenant's),
//! voice is refused with the hours and other ways to get help — urgent voice
//! too when that queue is closed, with the emergency guidance (911, 988)
//! first — and email and chat are accepted and flagged `after_hours`.

use careline_domain::classify::classify;
use careline_domain::tenant::TenantConfig;
use careline_domain::{Channel, Language, Priority, UrgentReason};
use careline_proto::v1;
use careline_routing::{Created, NewInteraction, RoutingError, RoutingStore};
use chrono::{DateTime, Utc};

use crate::error::{OutsideHours, QueueFull, RouterError};

/// A create request as the caller made it, validated, before the tenant's rules.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub channel: Channel,
    /// `None`: a topic rule chooses it.
    pub queue: Option<String>,
    /// `None`: detected from the text, else the tenant's first language.
    pub language: Option<Language>,
    pub urgent: bool,
    pub priority: Priority,
    pub member_ref: String,
    pub context: v1::InteractionContext,
    pub idempotency_key: String,
    /// When the member first queued (ms since the epoch); `None`: now.
    pub queued_since_ms: Option<i64>,
}

/// Applies the tenant's rules to `request` and queues it.
pub async fn create_interaction(
    store: &RoutingStore,
    config: &TenantConfig,
    request: CreateRequest,
    now: DateTime<Utc>,
) -> Result<Created, RouterError> {
    let mut new = understand(config, request)?;
    let hours = config.queue_hours(&new.queue);
    if !hours.is_open(now) {
        if new.channel == Channel::Voice {
            return Err(RouterError::OutsideHours(Box::new(OutsideHours {
                hours: hours.describe(),
                message: config.after_hours_message(new.language).to_string(),
                contact_email: config.contact_email.clone(),
                portal_url: config.portal_url.clone(),
                language: new.language.as_str().to_string(),
                emergency: new
                    .urgent
                    .then(|| UrgentReason::guidance(new.urgent_reason, new.language)),
            })));
        }
        new.after_hours = true;
    }
    match store.create_interaction(&config.id, &new).await {
        Err(RoutingError::QueueFull { waiting, max }) => {
            Err(RouterError::QueueFull(Box::new(QueueFull {
                queue: new.queue,
                waiting,
                max,
                contact_email: config.contact_email.clone(),
                portal_url: config.portal_url.clone(),
            })))
        }
        created => Ok(created?),
    }
}

/// What the request's text adds: urgency, language and queue. Only phrase
/// and topic ids are logged, never the text.
fn understand(
    config: &TenantConfig,
    request: CreateRequest,
) -> Result<NewInteraction, RouterError> {
    let text = format!("{}\n{}", request.context.reason, request.context.summary);
    let found = classify(&text, &config.routing.topics);
    let urgent = request.urgent || found.urgent.is_some();
    if let Some(reason) = found.urgent {
        tracing::info!(
            urgent_reason = reason.as_str(),
            "urgent phrase found in its text"
        );
        metrics::counter!(
            "careline_urgent_detected_total",
            "tenant" => config.id.clone(),
            "reason" => reason.as_str()
        )
        .increment(1);
    }
    let language = request
        .language
        .or(found.language.filter(|l| config.languages.contains(l)))
        .unwrap_or(config.languages[0]);
    let urgent_queue = config.routing.urgent_queue.as_ref().filter(|_| urgent);
    let queue = match (urgent_queue, request.queue, found.topic) {
        (Some(urgent_queue), _, _) => urgent_queue.clone(),
        (None, Some(queue), _) => queue,
        (None, None, Some(rule)) => {
            tracing::debug!(topic = rule.topic.as_str(), "queue chosen by topic rule");
            rule.queue.clone()
        }
        (None, None, None) => {
            return Err(RouterError::Invalid(
                "queue_id is required: no topic rule (routing.topics) matched context.reason \
                 or context.summary; name a queue"
                    .into(),
            ));
        }
    };
    let max_waiting = config
        .queue(&queue)
        .and_then(|q| q.max_waiting)
        .unwrap_or(0);
    Ok(NewInteraction {
        channel: request.channel,
        queue,
        language,
        urgent,
        urgent_reason: found.urgent,
        priority: if urgent {
            Priority::Urgent
        } else {
            request.priority
        },
        member_ref: request.member_ref,
        context: request.context,
        after_hours: false,
        max_waiting,
        idempotency_key: request.idempotency_key,
        queued_since_ms: request.queued_since_ms,
    })
}
