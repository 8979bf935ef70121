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
}

/// What can go wrong in a router request.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// Voice contact while the tenant is closed: refused with the hours and where to go instead.
    #[error("the tenant's phone lines are closed ({}); email {} or use the member portal", .0.hours, .0.contact_email)]
    OutsideHours(Box<OutsideHours>),
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
            RouterError::Routing(routing) => Status::from(routing),
        }
    }
}
