//! The campaigns service's errors and their one mapping to gRPC status codes.
//! Messages say what was wrong and what to do; none carries a member
//! reference or contact hint.

use tonic::Status;

/// What can go wrong in a campaigns request or while working.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The tenant has no campaign with this code.
    #[error("no campaign {0:?}: use a code from the tenant's outreach.campaigns")]
    UnknownCampaign(String),
    /// The tenant has no call-back campaign.
    #[error(
        "the tenant has no call-back campaign: mark one voice campaign `callback: true` in outreach.campaigns"
    )]
    NoCallbackCampaign,
    /// The target is not in an attempt (never added, or its attempt was reported).
    #[error(
        "the member has no attempt in progress in campaign {0:?}: report each attempt once, after it was offered"
    )]
    NoAttempt(String),
    /// The tenant's router API key is not configured.
    #[error(
        "no router API key for tenant {0:?}: add it to --router-api-keys / CARELINE_CAMPAIGNS_ROUTER_API_KEYS"
    )]
    NoRouterKey(String),
    /// The router refused or failed a call.
    #[error("the router answered {}: {}", .0.code(), .0.message())]
    Router(Status),
    /// Redis or NATS could not be reached; try again.
    #[error("{0}")]
    Unavailable(String),
}

impl CampaignError {
    /// A Redis failure, said without the URL (it may carry a password).
    pub fn redis(action: &str, error: &redis::RedisError) -> Self {
        CampaignError::Unavailable(format!("Redis failed to {action}: {error}; try again"))
    }
}

impl From<careline_bus::BusError> for CampaignError {
    fn from(error: careline_bus::BusError) -> Self {
        match error {
            careline_bus::BusError::InvalidSubjectPart { .. } => {
                CampaignError::Invalid(error.to_string())
            }
            error => CampaignError::Unavailable(format!("{error}; try again")),
        }
    }
}

impl From<CampaignError> for Status {
    fn from(error: CampaignError) -> Status {
        let message = error.to_string();
        match error {
            CampaignError::Invalid(_) => Status::invalid_argument(message),
            CampaignError::UnknownCampaign(_) => Status::not_found(message),
            CampaignError::NoCallbackCampaign | CampaignError::NoAttempt(_) => {
                Status::failed_precondition(message)
            }
            CampaignError::NoRouterKey(_) => Status::failed_precondition(message),
            CampaignError::Router(_) | CampaignError::Unavailable(_) => {
                Status::unavailable(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn each_error_maps_to_the_status_a_caller_can_act_on() {
        let cases = [
            (
                CampaignError::Invalid("member_ref".into()),
                Code::InvalidArgument,
            ),
            (CampaignError::UnknownCampaign("x".into()), Code::NotFound),
            (CampaignError::NoCallbackCampaign, Code::FailedPrecondition),
            (
                CampaignError::NoAttempt("x".into()),
                Code::FailedPrecondition,
            ),
            (
                CampaignError::NoRouterKey("t".into()),
                Code::FailedPrecondition,
            ),
            (
                CampaignError::Router(Status::internal("boom")),
                Code::Unavailable,
            ),
            (
                CampaignError::Unavailable("Redis down; try again".into()),
                Code::Unavailable,
            ),
        ];
        for (error, code) in cases {
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{}", status.message());
            assert!(!status.message().is_empty());
        }
    }
}
