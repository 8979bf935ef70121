//! The `careline.v1.NotificationService` gRPC adapter: authenticate the
//! tenant, call [`DeadLetters`], map errors (see `error.rs`).

use careline_domain::tenant::Scope;
use careline_proto::v1;
use careline_proto::v1::notification_service_server::NotificationService;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::dead_letters::DeadLetters;

/// The NotificationService.
#[derive(Debug, Clone)]
pub struct Notifications {
    pub(crate) dead_letters: DeadLetters,
}

/// The caller's tenant; dead letters are an operator's business, so the key needs `admin`.
fn tenant<T>(request: &Request<T>) -> Result<String, Status> {
    let tenant = careline_kit::authorize(request, &[Scope::Admin])?;
    tracing::Span::current().record("tenant", tenant.as_str());
    Ok(tenant)
}

#[tonic::async_trait]
impl NotificationService for Notifications {
    #[instrument(skip_all, fields(tenant))]
    async fn list_dead_letters(
        &self,
        request: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        let tenant = tenant(&request)?;
        let dead_letters = self
            .dead_letters
            .list(&tenant, request.get_ref().page_size)
            .await?;
        Ok(Response::new(v1::ListDeadLettersResponse { dead_letters }))
    }

    #[instrument(skip_all, fields(tenant, notification_id = %request.get_ref().notification_id))]
    async fn replay_dead_letter(
        &self,
        request: Request<v1::ReplayDeadLetterRequest>,
    ) -> Result<Response<v1::ReplayDeadLetterResponse>, Status> {
        let tenant = tenant(&request)?;
        self.dead_letters
            .replay(&tenant, &request.get_ref().notification_id)
            .await?;
        Ok(Response::new(v1::ReplayDeadLetterResponse {}))
    }
}
