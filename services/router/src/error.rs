//! The router's errors and their one mapping to gRPC status codes (routing errors
//! through the shared [`RoutingError::code`] table).

use careline_routing::RoutingError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Why the tenant's phone line is closed, for the caller to tell the member.
#[derive(Debug, Clone)]
pub struct OutsideHours {
    /// The opening hours, e.g. `Mon-Fri 07:00-19:00 America/Denver`.
    pub hours: String,
    /// The tenant's after-hours message in `language`.
    pub message: String,
    /// Where the member can write instead.
    pub contact_email: String,
    /// The member portal, open around the clock (empty when the tenant has none).
    pub portal_url: String,
    /// The language of `message`.
    pub language: String,
    /// For an urgent contact: call 911, or 988, now (in `language`). It
    /// comes first in the status message.
    pub emergency: Option<&'static str>,
}

impl OutsideHours {
    /// What a person reads first: the emergency guidance when urgent, the
    /// hours, the tenant's message and where to go instead.
    fn describe(&self) -> String {
        let mut text = String::new();
        if let Some(emergency) = self.emergency {
            text.push_str(emergency);
            text.push(' ');
        }
        text.push_str(&format!(
            "The phone lines are closed now (open {}). {} Email {}",
            self.hours, self.message, self.contact_email
        ));
        if !self.portal_url.is_empty() {
            text.push_str(&format!(" or use the member portal {}", self.portal_url));
        }
        text.push('.');
        text
    }
}

/// A queue at its `max_waiting`: what the caller is told instead.
#[derive(Debug, Clone)]
pub struct QueueFull {
    /// The full queue.
    pub queue: String,
    /// Contacts waiting in it, and its cap.
    pub waiting: u64,
    pub max: u64,
    /// Where the member can write instead.
    pub contact_email: String,
    /// The member portal (empty when the tenant has none).
    pub portal_url: String,
}

/// What can go wrong in a router request.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// Voice contact while the tenant is closed: refused with the hours and where to go instead.
    #[error("{}", .0.describe())]
    OutsideHours(Box<OutsideHours>),
    /// The queue holds its maximum of waiting contacts: refused with the alternatives.
    #[error("queue {} is full ({} contacts wait, its limit is {}); email {}{} or try again later", .0.queue, .0.waiting, .0.max, .0.contact_email, if .0.portal_url.is_empty() { String::new() } else { format!(", use the member portal {}", .0.portal_url) })]
    QueueFull(Box<QueueFull>),
    /// The tenant's request budget is spent for now; retry after `retry_after`.
    #[error("the tenant's limit of {per_sec} {what} a second is reached; retry in {} ms", .retry_after.as_millis().max(1))]
    RateLimited {
        what: &'static str,
        per_sec: u32,
        retry_after: std::time::Duration,
    },
    /// The caller's tenant configuration is not loaded.
    #[error("tenant configuration is not available: {0}")]
    UnknownTenant(String),
    /// A routing operation failed; mapped by [`RoutingError::code`].
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

impl From<RouterError> for Status {
    fn from(error: RouterError) -> Status {
        let message = error.to_string();
        match error {
            RouterError::Invalid(_) => Status::invalid_argument(message),
            RouterError::OutsideHours(closed) => {
                let mut details = ErrorDetails::new();
                let mut info = vec![
                    ("hours".to_string(), closed.hours.clone()),
                    ("after_hours_message".to_string(), closed.message.clone()),
                    ("contact_email".to_string(), closed.contact_email.clone()),
                    ("portal_url".to_string(), closed.portal_url.clone()),
                ];
                let mut localized = closed.message.clone();
                if let Some(emergency) = closed.emergency {
                    info.push(("emergency_guidance".to_string(), emergency.to_string()));
                    localized = format!("{emergency} {localized}");
                }
                details
                    .set_error_info(
                        "OUTSIDE_BUSINESS_HOURS",
                        "careline.v1",
                        info.into_iter()
                            .collect::<std::collections::HashMap<_, _>>(),
                    )
                    .set_localized_message(closed.language.clone(), localized)
                    .add_precondition_failure_violation(
                        "BUSINESS_HOURS",
                        closed.hours.clone(),
                        closed.message.clone(),
                    );
                if !closed.portal_url.is_empty() {
                    details.add_help_link("Member portal (open 24/7)", closed.portal_url.clone());
                }
                details.add_help_link("Email us", format!("mailto:{}", closed.contact_email));
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            RouterError::QueueFull(full) => {
                let mut details = ErrorDetails::new();
                details
                    .set_error_info(
                        "QUEUE_FULL",
                        "careline.v1",
                        [
                            ("queue_id".to_string(), full.queue.clone()),
                            ("waiting".to_string(), full.waiting.to_string()),
                            ("max_waiting".to_string(), full.max.to_string()),
                            ("contact_email".to_string(), full.contact_email.clone()),
                            ("portal_url".to_string(), full.portal_url.clone()),
                        ],
                    )
                    .add_quota_failure_violation(
                        format!("queue:{}", full.queue),
                        format!("at most {} contacts wait in this queue", full.max),
                    );
                details.add_help_link("Email us", format!("mailto:{}", full.contact_email));
                if !full.portal_url.is_empty() {
                    details.add_help_link("Member portal (open 24/7)", full.portal_url.clone());
                }
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            RouterError::RateLimited {
                what,
                per_sec,
                retry_after,
            } => {
                let mut details = ErrorDetails::new();
                details
                    .set_retry_info(Some(retry_after))
                    .set_error_info(
                        "RATE_LIMITED",
                        "careline.v1",
                        [
                            ("limit".to_string(), format!("limits.{what}_per_sec")),
                            ("per_sec".to_string(), per_sec.to_string()),
                        ],
                    )
                    .add_quota_failure_violation(
                        format!("limits.{what}_per_sec"),
                        format!("at most {per_sec} {what} a second for this tenant"),
                    );
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            RouterError::UnknownTenant(_) => Status::permission_denied(message),
            RouterError::Routing(routing) => Status::from(routing),
        }
    }
}
