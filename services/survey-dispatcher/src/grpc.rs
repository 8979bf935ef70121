//! The `careline.v1.SurveyService` gRPC adapter: authorize the tenant's API
//! key (SetSurveyContact, SubmitSurveyResponse and OptOut need the `intake`
//! scope, GetSurveyStats `supervisor`), validate, call [`Surveys`], map errors (see `error.rs`). Comments and
//! addresses never reach a span.

use careline_domain::survey::Scores;
use careline_domain::tenant::Scope;
use careline_proto::v1;
use careline_proto::v1::survey_service_server::SurveyService;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::SurveyError;
use crate::surveys::Surveys;

/// The SurveyService.
#[derive(Debug, Clone)]
pub struct SurveyApi {
    pub(crate) surveys: Surveys,
}

/// The caller's tenant, if its API key has one of `needed` (or `admin`).
fn tenant<T>(request: &Request<T>, needed: &[Scope]) -> Result<String, Status> {
    let tenant = careline_kit::authorize(request, needed)?;
    tracing::Span::current().record("tenant", tenant.as_str());
    Ok(tenant)
}

#[tonic::async_trait]
impl SurveyService for SurveyApi {
    #[instrument(skip_all, fields(tenant))]
    async fn set_survey_contact(
        &self,
        request: Request<v1::SetSurveyContactRequest>,
    ) -> Result<Response<v1::SetSurveyContactResponse>, Status> {
        let tenant = tenant(&request, &[Scope::Intake])?;
        let r = request.get_ref();
        self.surveys
            .set_contact(&tenant, &r.member_ref, &r.email_address, &r.language)
            .await?;
        Ok(Response::new(v1::SetSurveyContactResponse {}))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn submit_survey_response(
        &self,
        request: Request<v1::SubmitSurveyResponseRequest>,
    ) -> Result<Response<v1::SubmitSurveyResponseResponse>, Status> {
        let tenant = tenant(&request, &[Scope::Intake])?;
        let r = request.get_ref();
        let scores = Scores::new(r.recommend.into(), r.hire_agent.into(), r.ease.into())
            .map_err(|e| SurveyError::Invalid(e.to_string()))?;
        let claims = self
            .surveys
            .submit(Some(&tenant), &r.token, scores, &r.comment)
            .await?;
        tracing::Span::current().record("interaction_id", claims.interaction_id.as_str());
        Ok(Response::new(v1::SubmitSurveyResponseResponse {
            interaction_id: claims.interaction_id,
        }))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn get_survey_stats(
        &self,
        request: Request<v1::GetSurveyStatsRequest>,
    ) -> Result<Response<v1::GetSurveyStatsResponse>, Status> {
        let tenant = tenant(&request, &[Scope::Supervisor])?;
        let r = request.get_ref();
        let (tally, truncated) = self
            .surveys
            .stats(&tenant, &r.queue_id, &r.agent_id, r.from_ms, r.to_ms)
            .await?;
        Ok(Response::new(v1::GetSurveyStatsResponse {
            responses: tally.responses,
            promoters: tally.promoters,
            passives: tally.passives,
            detractors: tally.detractors,
            nps: tally.nps(),
            mean_hire_agent: tally.mean_hire_agent(),
            mean_ease: tally.mean_ease(),
            truncated,
        }))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn opt_out(
        &self,
        request: Request<v1::OptOutRequest>,
    ) -> Result<Response<v1::OptOutResponse>, Status> {
        let tenant = tenant(&request, &[Scope::Intake])?;
        self.surveys
            .opt_out(&tenant, &request.get_ref().member_ref)
            .await?;
        Ok(Response::new(v1::OptOutResponse {}))
    }
}
