//! [`RouterGateway`]: the router's public gRPC API as the campaigns service
//! uses it (create outbound interactions, read queue stats and an inbound
//! interaction's campaign attribute), each call with the tenant's router key.

use careline_kit::{RouterKeys, RouterLink, Tls};
use careline_proto::v1;
use careline_proto::v1::router_client::RouterClient;
use tonic::transport::Channel;

use crate::CampaignError;

/// Longest wait for one router call; the worker tries again on a later pass.
pub const ROUTER_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What pacing needs to know of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLoad {
    /// Agents logged in to the queue (available, busy or away for a moment).
    pub agents_serving: u32,
    /// Contacts waiting above the outbound (low) priority: inbound contacts.
    pub inbound_waiting: u32,
}

/// A router client per call, sharing one lazily connected channel.
#[derive(Debug, Clone)]
pub struct RouterGateway {
    link: RouterLink,
}

impl RouterGateway {
    /// A gateway to the router at `url` (connects on first use).
    pub fn new(url: &str, keys: RouterKeys, tls: &Tls) -> Result<RouterGateway, CampaignError> {
        let link =
            RouterLink::new(url, keys, tls, ROUTER_CALL_TIMEOUT).map_err(CampaignError::Invalid)?;
        Ok(RouterGateway { link })
    }

    /// Whether the tenant's router key is configured.
    pub fn has_key(&self, tenant: &str) -> bool {
        self.link.has_key(tenant)
    }

    fn request<T>(&self, tenant: &str, message: T) -> Result<tonic::Request<T>, CampaignError> {
        self.link
            .request(tenant, message)
            .ok_or_else(|| CampaignError::NoRouterKey(tenant.to_owned()))
    }

    fn client(&self) -> RouterClient<Channel> {
        self.link.client()
    }

    /// `CreateInteraction` for `tenant`.
    pub async fn create(
        &self,
        tenant: &str,
        create: v1::CreateInteractionRequest,
    ) -> Result<v1::CreateInteractionResponse, CampaignError> {
        let request = self.request(tenant, create)?;
        self.client()
            .create_interaction(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(CampaignError::Router)
    }

    /// `GetInteraction` for `tenant`; `None` when the router does not know it.
    pub async fn get(
        &self,
        tenant: &str,
        interaction_id: &str,
    ) -> Result<Option<v1::Interaction>, CampaignError> {
        let request = self.request(
            tenant,
            v1::GetInteractionRequest {
                interaction_id: interaction_id.to_owned(),
            },
        )?;
        match self.client().get_interaction(request).await {
            Ok(response) => Ok(Some(response.into_inner())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(CampaignError::Router(status)),
        }
    }

    /// Agents and inbound contacts of `queue_id`.
    pub async fn queue_load(
        &self,
        tenant: &str,
        queue_id: &str,
    ) -> Result<QueueLoad, CampaignError> {
        let request = self.request(
            tenant,
            v1::GetQueueStatsRequest {
                queue_id: queue_id.to_owned(),
            },
        )?;
        let stats = self
            .client()
            .get_queue_stats(request)
            .await
            .map_err(CampaignError::Router)?
            .into_inner();
        let queue = stats.queues.into_iter().find(|q| q.queue_id == queue_id);
        Ok(queue.map_or(
            QueueLoad {
                agents_serving: 0,
                inbound_waiting: 0,
            },
            |q| {
                let outbound = q
                    .depth_by_priority
                    .iter()
                    .filter(|d| d.priority == v1::Priority::Low as i32)
                    .map(|d| d.waiting)
                    .sum::<u32>();
                QueueLoad {
                    agents_serving: q.agents_available + q.agents_busy + q.agents_away,
                    inbound_waiting: q.waiting.saturating_sub(outbound),
                }
            },
        ))
    }
}
