//! The `careline.v1.EmailIntake` tonic service: authenticate (tenant from the
//! credential), validate, call [`Inbox`] / [`Intake`], map errors through
//! [`EmailError`]'s one table.

use careline_domain::tenant::Scope;
use careline_domain::{AgentId, InteractionId};
use careline_kit::authorize;
use careline_proto::v1;
use careline_proto::v1::email_intake_server::EmailIntake;
use tonic::{Request, Response, Status};

use crate::error::EmailError;
use crate::inbox::{Arrival, Inbox};
use crate::intake::{Intake, MAX_REPLY_BYTES};

/// The gRPC service over the email core.
#[derive(Debug, Clone)]
pub struct EmailIntakeService {
    pub inbox: Inbox,
    pub intake: Intake,
    /// Where reads of a thread are recorded before it is returned.
    pub audit: careline_bus::audit::AuditLog,
}

fn interaction_id(value: &str) -> Result<String, EmailError> {
    InteractionId::new(value)
        .map(|id| id.as_str().to_owned())
        .map_err(|e| EmailError::Invalid(format!("interaction_id: {e}")))
}

#[tonic::async_trait]
impl EmailIntake for EmailIntakeService {
    #[tracing::instrument(skip_all, fields(tenant))]
    async fn ingest_email(
        &self,
        request: Request<v1::IngestEmailRequest>,
    ) -> Result<Response<v1::IngestEmailResponse>, Status> {
        let tenant = authorize(&request, &[Scope::Intake])?;
        let raw = request.into_inner().raw;
        if raw.is_empty() {
            return Err(EmailError::Invalid("raw: the message is empty".into()).into());
        }
        let accepted = self.inbox.accept(&tenant, raw, Arrival::grpc()).await?;
        metrics::counter!("careline_email_ingested_total").increment(1);
        Ok(Response::new(v1::IngestEmailResponse {
            message_id: accepted.message_id,
            duplicate: accepted.duplicate,
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant, interaction_id))]
    async fn reply_email(
        &self,
        request: Request<v1::ReplyEmailRequest>,
    ) -> Result<Response<v1::ReplyEmailResponse>, Status> {
        let tenant = authorize(&request, &[Scope::AgentActions])?;
        let request = request.into_inner();
        let id = interaction_id(&request.interaction_id)?;
        tracing::Span::current().record("interaction_id", id.as_str());
        let agent = AgentId::new(request.agent_id.as_str())
            .map_err(|e| EmailError::Invalid(format!("agent_id: {e}")))?;
        if request.body.trim().is_empty() || request.body.len() > MAX_REPLY_BYTES {
            return Err(EmailError::Invalid(format!(
                "body: write 1 to {MAX_REPLY_BYTES} bytes of text"
            ))
            .into());
        }
        let response = self
            .intake
            .reply(&tenant, &id, agent.as_str(), &request.body)
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all, fields(tenant, interaction_id))]
    async fn get_thread(
        &self,
        request: Request<v1::GetThreadRequest>,
    ) -> Result<Response<v1::EmailThread>, Status> {
        let tenant = authorize(&request, &[Scope::Supervisor, Scope::AgentActions])?;
        let reader = careline_kit::auth::key_id(&request);
        let id = interaction_id(&request.into_inner().interaction_id)?;
        tracing::Span::current().record("interaction_id", id.as_str());
        let thread = self.intake.thread(&tenant, &id).await?;
        careline_kit::auth::record_read(
            &self.audit,
            &reader,
            &tenant,
            "careline.v1.EmailIntake/GetThread",
            vec![id],
        )
        .await?;
        Ok(Response::new(thread))
    }
}
