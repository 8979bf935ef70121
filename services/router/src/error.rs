//! The router's errors and their one mapping to gRPC status codes.

use careline_routing::RoutingError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Why the tenant's phone line is closed, for the caller to tell the member.
#[derive(Debug, Clone)]
pub struct OutsideHours {
    pub hours: String,
    pub message: String,
    pub contact_email: String,
    pub portal_url: String,
    pub language: String,
}

/// What can go wrong in a router request.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("{0}")]
    Invalid(String),
    #[error("the tenant's phone lines are closed ({}); email {} or use the member portal", .0.hours, .0.contact_email)]
    OutsideHours(Box<OutsideHours>),
    #[error("tenant configuration is not available: {0}")]
    UnknownTenant(String),
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
                details
                    .set_error_info(
                        "OUTSIDE_BUSINESS_HOURS",
                        "careline.v1",
                        [
                            ("hours".to_string(), closed.hours.clone()),
                            ("after_hours_message".to_string(), closed.message.clone()),
                            ("contact_email".to_string(), closed.contact_email.clone()),
                            ("portal_url".to_string(), closed.portal_url.clone()),
                        ],
                    )
                    .set_localized_message(closed.language.clone(), closed.message.clone())
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
            RouterError::UnknownTenant(_) => Status::permission_denied(message),
            RouterError::Routing(routing) => match routing {
                RoutingError::NotFound(_) => Status::not_found(message),
                RoutingError::FailedPrecondition(_) => Status::failed_precondition(message),
                RoutingError::AlreadyExists(_) => Status::already_exists(message),
                RoutingError::InvalidArgument(_) => Status::invalid_argument(message),
                RoutingError::Redis(_) | RoutingError::Bus(_) | RoutingError::Unreachable(_) => {
                    tracing::warn!(error = %message, "routing backend unavailable");
                    Status::unavailable(
                        "routing state is unavailable right now; retry with the same idempotency key",
                    )
                }
                RoutingError::Reply(_) | RoutingError::Corrupt(_) => {
                    tracing::error!(error = %message, "routing state is inconsistent");
                    Status::internal("internal routing error; it has been logged")
                }
            },
        }
    }
}
