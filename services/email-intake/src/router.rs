//! [`RouterGateway`]: the router's public gRPC API as email-intake uses it,
//! each call authenticated with the tenant's router API key.

use careline_kit::{RouterLink, Tls};
use careline_proto::v1;

use crate::config::RouterKeys;
use crate::error::EmailError;

/// Longest wait for one router call; the consumer retries later.
pub const ROUTER_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A router client per call, sharing one lazily connected channel.
#[derive(Debug, Clone)]
pub struct RouterGateway {
    link: RouterLink,
}

impl RouterGateway {
    /// A gateway to the router at `url` (connects on first use, reconnects as needed);
    /// `https://` uses `tls`'s CA file and client certificate.
    pub fn new(url: &str, keys: RouterKeys, tls: &Tls) -> Result<RouterGateway, EmailError> {
        let link =
            RouterLink::new(url, keys, tls, ROUTER_CALL_TIMEOUT).map_err(EmailError::Invalid)?;
        Ok(RouterGateway { link })
    }

    fn request<T>(&self, tenant: &str, message: T) -> Result<tonic::Request<T>, EmailError> {
        self.link
            .request(tenant, message)
            .ok_or_else(|| EmailError::NoRouterKey(tenant.to_owned()))
    }

    /// `CreateInteraction` for `tenant`.
    pub async fn create(
        &self,
        tenant: &str,
        create: v1::CreateInteractionRequest,
    ) -> Result<v1::CreateInteractionResponse, EmailError> {
        let request = self.request(tenant, create)?;
        self.link
            .client()
            .create_interaction(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(EmailError::Router)
    }

    /// `GetInteraction` for `tenant`; `None` when the router does not know it.
    pub async fn get(
        &self,
        tenant: &str,
        interaction_id: &str,
    ) -> Result<Option<v1::Interaction>, EmailError> {
        let request = self.request(
            tenant,
            v1::GetInteractionRequest {
                interaction_id: interaction_id.to_owned(),
            },
        )?;
        match self.link.client().get_interaction(request).await {
            Ok(response) => Ok(Some(response.into_inner())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(EmailError::Router(status)),
        }
    }
}

/// Whether an interaction still takes messages (not resolved, abandoned or sent elsewhere).
pub fn is_open(interaction: &v1::Interaction) -> bool {
    use v1::InteractionState as S;
    matches!(
        S::try_from(interaction.state),
        Ok(S::Queued | S::Offered | S::Assigned | S::Pending)
    )
}
