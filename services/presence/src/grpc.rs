//! The `careline.v1.Presence` gRPC adapter: authenticate, validate, call the
//! core (`session`, `agents`), map errors (see `error.rs`).

use std::pin::Pin;
use std::sync::Arc;

use careline_domain::tenant::{Scope, TenantConfig};
use careline_domain::{AgentId, QueueId};
use careline_proto::v1;
use careline_proto::v1::presence_server::Presence;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::instrument;

use crate::agents;
use crate::error::PresenceError;
use crate::session::{self, SessionContext};
use crate::sessions::SESSION_BUFFER;
use careline_bus::TenantDirectory;

type EventStream = Pin<Box<dyn Stream<Item = Result<v1::AgentSessionEvent, Status>> + Send>>;

/// The Presence service.
#[derive(Clone)]
pub struct PresenceService {
    pub(crate) ctx: SessionContext,
    /// Session tasks, awaited on shutdown so every agent is taken offline.
    pub(crate) sessions: TaskTracker,
    /// One permit per agent session this replica may still hold.
    pub(crate) session_slots: Arc<tokio::sync::Semaphore>,
    /// The configured maximum, for the refusal message.
    pub(crate) max_sessions: u32,
}

impl PresenceService {
    fn tenant<T>(&self, request: &Request<T>) -> Result<Arc<TenantConfig>, Status> {
        let tenant = careline_kit::authorize(request, &[Scope::Supervisor])?;
        tracing::Span::current().record("tenant", tenant.as_str());
        self.tenants()
            .get(&tenant)
            .ok_or_else(|| PresenceError::UnknownTenant(tenant).into())
    }

    fn tenants(&self) -> &TenantDirectory {
        &self.ctx.tenants
    }
}

fn invalid(message: String) -> Status {
    PresenceError::Invalid(message).into()
}

#[tonic::async_trait]
impl Presence for PresenceService {
    type OpenAgentSessionStream = EventStream;

    async fn open_agent_session(
        &self,
        request: Request<Streaming<v1::AgentSessionRequest>>,
    ) -> Result<Response<Self::OpenAgentSessionStream>, Status> {
        let slot = Arc::clone(&self.session_slots)
            .try_acquire_owned()
            .map_err(|_| Status::from(PresenceError::TooManySessions(self.max_sessions)))?;
        let inbound = request.into_inner().take_while(|item| {
            if let Err(status) = item {
                tracing::debug!(code = ?status.code(), "agent session stream broke");
            }
            std::future::ready(item.is_ok())
        });
        let inbound = Box::pin(inbound.filter_map(|item| std::future::ready(item.ok())));
        let (tx, rx) = mpsc::channel(SESSION_BUFFER);
        let session = session::run(self.ctx.clone(), inbound, tx);
        self.sessions.spawn(async move {
            session.await;
            drop(slot);
        });
        let events = ReceiverStream::new(rx).map(|item| item.map_err(Status::from));
        Ok(Response::new(Box::pin(events)))
    }

    #[instrument(skip_all, fields(tenant, agent_id))]
    async fn get_agent(
        &self,
        request: Request<v1::GetAgentRequest>,
    ) -> Result<Response<v1::Agent>, Status> {
        let config = self.tenant(&request)?;
        let agent = AgentId::new(request.get_ref().agent_id.as_str())
            .map_err(|e| invalid(format!("agent_id: {e}")))?;
        tracing::Span::current().record("agent_id", agent.as_str());
        Ok(Response::new(
            agents::get(&self.ctx.store, &config, agent.as_str()).await?,
        ))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn list_agents(
        &self,
        request: Request<v1::ListAgentsRequest>,
    ) -> Result<Response<v1::ListAgentsResponse>, Status> {
        let config = self.tenant(&request)?;
        let request = request.into_inner();
        let queue = match request.queue_id.as_str() {
            "" => None,
            value => {
                let id = QueueId::new(value).map_err(|e| invalid(format!("queue_id: {e}")))?;
                if config.queue(id.as_str()).is_none() {
                    let known: Vec<&str> = config.queues.iter().map(|q| q.id.as_str()).collect();
                    return Err(invalid(format!(
                        "queue_id: \"{value}\" is not a queue of this tenant; known queues: {}",
                        known.join(", ")
                    )));
                }
                Some(id)
            }
        };
        let page = request.page.unwrap_or_default();
        let after = match page.page_token.as_str() {
            "" => None,
            token => Some(AgentId::new(token).map_err(|_| {
                invalid("page.page_token: not a token from a previous ListAgents response".into())
            })?),
        };
        let (agents, next) = agents::list(
            &self.ctx.store,
            &config,
            queue.as_ref().map(QueueId::as_str),
            page.page_size as usize,
            after.as_ref().map(AgentId::as_str),
        )
        .await?;
        Ok(Response::new(v1::ListAgentsResponse {
            agents,
            page: Some(v1::PageResponse {
                next_page_token: next,
            }),
        }))
    }
}
