//! The survey service's errors and their one mapping to gRPC status codes.
//! Messages say what was wrong and what to do; none carries a member's
//! address or comment.

use tonic::Status;

/// What can go wrong in a survey request or while setting up.
#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The survey link was not signed by this platform (or was altered).
    #[error("the survey link is not valid: it was altered or not made by Careline")]
    Forged,
    /// The survey link is past its expiry.
    #[error("the survey link has expired; surveys can be answered for a limited time")]
    Expired,
    /// The survey was answered before; answers cannot be changed.
    #[error("this survey was already answered")]
    AlreadyAnswered,
    /// The token belongs to another tenant than the caller's credential.
    #[error("the survey link belongs to another tenant than your API key")]
    OtherTenant,
    /// Redis or NATS could not be reached; try again.
    #[error("{0}")]
    Unavailable(String),
    /// The configuration cannot work; the message names the setting.
    #[error("{0}")]
    Config(String),
}

impl SurveyError {
    /// A Redis failure, said without the URL (it may carry a password).
    pub fn redis(action: &str, error: &redis::RedisError) -> Self {
        SurveyError::Unavailable(format!("Redis failed to {action}: {error}; try again"))
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SurveyError::Unavailable(_))
    }
}

impl From<careline_bus::BusError> for SurveyError {
    fn from(error: careline_bus::BusError) -> Self {
        match error {
            careline_bus::BusError::InvalidSubjectPart { .. } => {
                SurveyError::Invalid(error.to_string())
            }
            error => SurveyError::Unavailable(format!("{error}; try again")),
        }
    }
}

impl From<SurveyError> for Status {
    fn from(error: SurveyError) -> Status {
        let message = error.to_string();
        match error {
            SurveyError::Invalid(_) | SurveyError::Forged => Status::invalid_argument(message),
            SurveyError::Expired => Status::failed_precondition(message),
            SurveyError::AlreadyAnswered => Status::already_exists(message),
            SurveyError::OtherTenant => Status::permission_denied(message),
            SurveyError::Unavailable(_) => Status::unavailable(message),
            SurveyError::Config(_) => Status::failed_precondition(message),
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
                SurveyError::Invalid("ease must be 1-5".into()),
                Code::InvalidArgument,
            ),
            (SurveyError::Forged, Code::InvalidArgument),
            (SurveyError::Expired, Code::FailedPrecondition),
            (SurveyError::AlreadyAnswered, Code::AlreadyExists),
            (SurveyError::OtherTenant, Code::PermissionDenied),
            (
                SurveyError::Unavailable("Redis down; try again".into()),
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
