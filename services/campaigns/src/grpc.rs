//! The `careline.v1.CampaignService` gRPC adapter: authorize the tenant's API
//! key (AddTargets, SuppressMember and RequestCallback need `intake`,
//! ReportAttemptResult `agent_actions`, GetCampaignStats `supervisor`; `admin`
//! may do all), validate, call [`Campaigns`], map errors (see `error.rs`).
//! Member references and contact hints never reach a span.

use careline_domain::tenant::Scope;
use careline_proto::v1;
use careline_proto::v1::campaign_service_server::CampaignService;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::campaigns::Campaigns;
use crate::validate;

/// The CampaignService.
#[derive(Debug, Clone)]
pub struct CampaignApi {
    pub(crate) campaigns: Campaigns,
}

/// The caller's tenant, if its API key has one of `needed` (or `admin`).
fn tenant<T>(request: &Request<T>, needed: &[Scope]) -> Result<String, Status> {
    let tenant = careline_kit::authorize(request, needed)?;
    tracing::Span::current().record("tenant", tenant.as_str());
    Ok(tenant)
}

#[tonic::async_trait]
impl CampaignService for CampaignApi {
    #[instrument(skip_all, fields(tenant, campaign))]
    async fn add_targets(
        &self,
        request: Request<v1::AddTargetsRequest>,
    ) -> Result<Response<v1::AddTargetsResponse>, Status> {
        let tenant = tenant(&request, &[Scope::Intake])?;
        let r = request.get_ref();
        tracing::Span::current().record("campaign", r.campaign_code.as_str());
        let (added, known) = self
            .campaigns
            .add_targets(&tenant, &r.campaign_code, &r.targets)
            .await?;
        Ok(Response::new(v1::AddTargetsResponse { added, known }))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn suppress_member(
        &self,
        request: Request<v1::SuppressMemberRequest>,
    ) -> Result<Response<v1::SuppressMemberResponse>, Status> {
        let tenant = tenant(&request, &[Scope::Intake])?;
        self.campaigns
            .suppress(&tenant, &request.get_ref().member_ref)
            .await?;
        Ok(Response::new(v1::SuppressMemberResponse {}))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn request_callback(
        &self,
        request: Request<v1::RequestCallbackRequest>,
    ) -> Result<Response<v1::RequestCallbackResponse>, Status> {
        let tenant = tenant(&request, &[Scope::Intake])?;
        let r = request.get_ref();
        tracing::Span::current().record("interaction_id", r.interaction_id.as_str());
        let (campaign_code, added) = self
            .campaigns
            .request_callback(
                &tenant,
                &r.member_ref,
                &r.interaction_id,
                &r.contact_hint,
                r.language,
            )
            .await?;
        Ok(Response::new(v1::RequestCallbackResponse {
            campaign_code,
            added,
        }))
    }

    #[instrument(skip_all, fields(tenant, campaign))]
    async fn report_attempt_result(
        &self,
        request: Request<v1::ReportAttemptResultRequest>,
    ) -> Result<Response<v1::ReportAttemptResultResponse>, Status> {
        let tenant = tenant(&request, &[Scope::AgentActions])?;
        let r = request.get_ref();
        tracing::Span::current().record("campaign", r.campaign_code.as_str());
        let result = validate::attempt_result(r.result)?;
        let (next_attempt_at_ms, state) = self
            .campaigns
            .report(&tenant, &r.campaign_code, &r.member_ref, result)
            .await?;
        Ok(Response::new(v1::ReportAttemptResultResponse {
            next_attempt_at_ms,
            state: state.to_owned(),
        }))
    }

    #[instrument(skip_all, fields(tenant, campaign))]
    async fn get_campaign_stats(
        &self,
        request: Request<v1::GetCampaignStatsRequest>,
    ) -> Result<Response<v1::GetCampaignStatsResponse>, Status> {
        let tenant = tenant(&request, &[Scope::Supervisor])?;
        let code = request.get_ref().campaign_code.clone();
        tracing::Span::current().record("campaign", code.as_str());
        let stats = self.campaigns.stats(&tenant, &code).await?;
        Ok(Response::new(v1::GetCampaignStatsResponse {
            campaign_code: code,
            targets: u32::try_from(stats.targets).unwrap_or(u32::MAX),
            due: u32::try_from(stats.due).unwrap_or(u32::MAX),
            in_progress: u32::try_from(stats.in_progress).unwrap_or(u32::MAX),
            attempts: stats.attempts,
            results: stats.results.into_iter().collect(),
            dispositions: stats.dispositions.into_iter().collect(),
            outcome_tags: stats.outcome_tags.into_iter().collect(),
            in_window: stats.in_window,
            failed_attempts: stats.failed_by_reason.values().sum(),
            failed_by_reason: stats.failed_by_reason.into_iter().collect(),
        }))
    }
}
