//! The `AuditLog` service: compliance officers list who read which member
//! contacts (records written by every service through `careline_bus::audit`).

use careline_domain::tenant::Scope;
use careline_proto::v1;
use careline_proto::v1::audit_log_server::AuditLog;
use careline_routing::list::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::validate;

/// The AuditLog service.
#[derive(Debug, Clone)]
pub struct AuditService {
    pub(crate) audit: careline_bus::audit::AuditLog,
}

#[tonic::async_trait]
impl AuditLog for AuditService {
    #[instrument(skip_all, fields(tenant))]
    async fn list_audit_events(
        &self,
        request: Request<v1::ListAuditEventsRequest>,
    ) -> Result<Response<v1::ListAuditEventsResponse>, Status> {
        let tenant = careline_kit::authorize(&request, &[Scope::Admin])?;
        tracing::Span::current().record("tenant", tenant.as_str());
        let request = request.into_inner();
        let (from_ms, to_ms) = validate::time_range(request.from_ms, request.to_ms)?;
        let page = request.page.unwrap_or_default();
        let page_size = match page.page_size as usize {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = match page.page_token.as_str() {
            "" => None,
            token => Some(token.parse::<u64>().map_err(|_| {
                Status::invalid_argument(
                    "page_token is invalid: pass back next_page_token unchanged",
                )
            })?),
        };
        let (events, next) = self
            .audit
            .list(
                &tenant,
                from_ms.unwrap_or(0),
                to_ms.unwrap_or(0),
                page_size,
                after,
            )
            .await
            .map_err(|error| {
                tracing::warn!(%error, "access audit not read");
                Status::unavailable("the access audit cannot be read right now; retry")
            })?;
        Ok(Response::new(v1::ListAuditEventsResponse {
            events,
            page: Some(v1::PageResponse {
                next_page_token: next,
            }),
        }))
    }
}
