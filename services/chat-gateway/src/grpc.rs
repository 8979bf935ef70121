//! The `careline.v1.ChatGateway` tonic adapter: authenticate, validate, call
//! the core ([`Chats`], [`crate::agent`]), map errors through [`ChatError`]'s
//! one status table.

use std::pin::Pin;
use std::sync::Arc;

use careline_domain::tenant::Scope;
use careline_proto::v1;
use careline_proto::v1::chat_gateway_server::ChatGateway;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::instrument;

use crate::agent;
use crate::chats::Chats;
use crate::error::ChatError;
use crate::limits::AGENT_QUEUE_EVENTS;

/// The gRPC service over the chat core.
pub struct ChatGatewayService {
    pub chats: Arc<Chats>,
    pub shutdown: CancellationToken,
    /// Agent stream tasks, joined before the backend's connections close.
    pub sessions: TaskTracker,
    /// Where reads of a transcript are recorded before it is returned.
    pub audit: careline_bus::audit::AuditLog,
}

#[tonic::async_trait]
impl ChatGateway for ChatGatewayService {
    type ChatSessionStream = Pin<Box<dyn Stream<Item = agent::Outgoing> + Send + 'static>>;

    async fn chat_session(
        &self,
        request: Request<Streaming<v1::ChatSessionRequest>>,
    ) -> Result<Response<Self::ChatSessionStream>, Status> {
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(AGENT_QUEUE_EVENTS);
        self.sessions.spawn(agent::run(
            self.chats.clone(),
            inbound,
            tx,
            self.shutdown.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn get_transcript(
        &self,
        request: Request<v1::GetTranscriptRequest>,
    ) -> Result<Response<v1::Transcript>, Status> {
        let tenant = careline_kit::authorize(&request, &[Scope::Supervisor, Scope::AgentActions])?;
        let ix = &request.get_ref().interaction_id;
        careline_domain::InteractionId::new(ix.as_str())
            .map_err(|e| ChatError::Invalid(format!("interaction_id: {e}")))?;
        let span = tracing::Span::current();
        span.record("tenant", tenant.as_str());
        span.record("interaction_id", ix.as_str());
        let store = &self.chats.store;
        if store.meta(&tenant, ix).await?.is_none() {
            return Err(ChatError::NotFound(ix.clone()).into());
        }
        let entries = store.entries(&tenant, ix, None).await?;
        careline_kit::auth::record_read(
            &self.audit,
            &careline_kit::auth::key_id(&request),
            &tenant,
            "careline.v1.ChatGateway/GetTranscript",
            vec![ix.clone()],
        )
        .await?;
        Ok(Response::new(v1::Transcript {
            interaction_id: ix.clone(),
            entries: entries.iter().map(|e| agent::entry_proto(ix, e)).collect(),
        }))
    }
}
