//! [`RouterGateway`]: the router's public gRPC API as chat-gateway uses it
//! (create, look up, abandon and resolve chat interactions), each call
//! authenticated with the tenant's router API key.

use std::time::Duration;

use careline_kit::Tls;
use careline_kit::{RouterKeys, RouterLink};
use careline_proto::v1;
use careline_proto::v1::router_client::RouterClient;
use tonic::transport::Channel;

use crate::error::ChatError;

/// Longest wait for one router call.
pub const ROUTER_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A router client per call, sharing one lazily connected channel.
#[derive(Debug, Clone)]
pub struct RouterGateway {
    link: RouterLink,
}

impl RouterGateway {
    /// A gateway to the router at `url` (connects on first use, reconnects as needed);
    /// `https://` uses `tls`'s CA file and client certificate.
    pub fn new(url: &str, keys: RouterKeys, tls: &Tls) -> Result<RouterGateway, ChatError> {
        let link =
            RouterLink::new(url, keys, tls, ROUTER_CALL_TIMEOUT).map_err(ChatError::Invalid)?;
        Ok(RouterGateway { link })
    }

    /// Whether the gateway can create interactions for `tenant`.
    pub fn serves(&self, tenant: &str) -> bool {
        self.link.has_key(tenant)
    }

    fn request<T>(&self, tenant: &str, message: T) -> Result<tonic::Request<T>, ChatError> {
        self.link
            .request(tenant, message)
            .ok_or_else(|| ChatError::NoRouterKey(tenant.to_owned()))
    }

    fn client(&self) -> RouterClient<Channel> {
        self.link.client()
    }

    /// `CreateInteraction` for `tenant`.
    pub async fn create(
        &self,
        tenant: &str,
        create: v1::CreateInteractionRequest,
    ) -> Result<v1::CreateInteractionResponse, ChatError> {
        let request = self.request(tenant, create)?;
        Ok(self
            .client()
            .create_interaction(request)
            .await
            .map_err(ChatError::Router)?
            .into_inner())
    }

    /// `WatchInteraction` for `tenant`: the interaction's state, queue
    /// position and estimated wait, each time they change.
    pub async fn watch(
        &self,
        tenant: &str,
        ix: &str,
    ) -> Result<tonic::Streaming<v1::InteractionStatus>, ChatError> {
        let request = self.request(
            tenant,
            v1::WatchInteractionRequest {
                interaction_id: ix.to_owned(),
            },
        )?;
        Ok(self
            .client()
            .watch_interaction(request)
            .await
            .map_err(ChatError::Router)?
            .into_inner())
    }

    /// `GetInteraction` for `tenant`.
    pub async fn get(&self, tenant: &str, ix: &str) -> Result<v1::Interaction, ChatError> {
        let request = self.request(
            tenant,
            v1::GetInteractionRequest {
                interaction_id: ix.to_owned(),
            },
        )?;
        match self.client().get_interaction(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(ChatError::NotFound(ix.to_owned()))
            }
            Err(status) => Err(ChatError::Router(status)),
        }
    }

    /// Ends the interaction the member left: abandoned while it waits
    /// (queued, offered, pending), resolved with `disposition` once an agent
    /// holds it (the router abandons only unanswered contacts). Already ended: nothing to do.
    pub async fn settle(&self, tenant: &str, ix: &str, disposition: &str) -> Result<(), ChatError> {
        use v1::InteractionState as S;
        let interaction = match self.get(tenant, ix).await {
            Ok(interaction) => interaction,
            Err(ChatError::NotFound(_)) => return Ok(()),
            Err(error) => return Err(error),
        };
        let result = match S::try_from(interaction.state) {
            Ok(S::Queued | S::Offered | S::Pending) => {
                let request = self.request(
                    tenant,
                    v1::AbandonRequest {
                        interaction_id: ix.to_owned(),
                    },
                )?;
                self.client().abandon(request).await.map(drop)
            }
            Ok(S::Assigned) => {
                let request = self.request(
                    tenant,
                    v1::ResolveRequest {
                        interaction_id: ix.to_owned(),
                        agent_id: interaction.agent_id,
                        disposition: disposition.to_owned(),
                        ..Default::default()
                    },
                )?;
                self.client().resolve(request).await.map(drop)
            }
            _ => Ok(()),
        };
        match result {
            // Another replica or the agent settled it between the two calls.
            Err(status) if status.code() == tonic::Code::FailedPrecondition => Ok(()),
            other => other.map_err(ChatError::Router),
        }
    }
}
