//! [`Bearer`]: how test clients present a tenant API key (`authorization: Bearer <key>`).

use tonic::metadata::{Ascii, MetadataValue};

/// A tonic interceptor that adds `authorization: Bearer <key>` to every request,
/// or nothing for an anonymous client.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// A bearer of `api_key`.
    pub fn new(api_key: &str) -> Bearer {
        Bearer(Some(header_value(api_key)))
    }

    /// A client that sends no credentials, to test that calls are refused.
    pub fn anonymous() -> Bearer {
        Bearer(None)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// `message` as a request carrying `api_key`, for clients without an interceptor.
pub fn request<T>(message: T, api_key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", header_value(api_key));
    request
}

fn header_value(api_key: &str) -> MetadataValue<Ascii> {
    format!("Bearer {api_key}")
        .parse()
        .expect("API keys are ASCII")
}
