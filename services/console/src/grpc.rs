//! The tonic adapter of `careline.v1.Console`: authenticate, validate, read
//! the KPI store or record a quality review, map errors through [`ConsoleError`].

use std::sync::Arc;

use careline_bus::TenantDirectory;
use careline_domain::tenant::Scope;
use careline_domain::{AgentId, QueueId};
use careline_proto::v1::{self, console_server::Console};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::error::ConsoleError;
use crate::figures;
use crate::periods::Period;
use crate::quality::QualityDesk;
use crate::store::KpiStore;

/// Scopes that may read KPIs (or `admin`).
pub const READ_KPIS: &[Scope] = &[Scope::Supervisor];
/// Default range of GetKpis when `from_ms` is 0: the day before `to_ms`.
pub const DEFAULT_RANGE_MS: i64 = 24 * 3_600_000;
/// Longest range one GetKpis may ask for.
pub const MAX_RANGE_MS: i64 = 400 * 24 * 3_600_000;

/// Scopes that may score interactions and mark them for coaching (or `admin`).
pub const REVIEW: &[Scope] = &[Scope::Supervisor];

/// The Console gRPC service.
pub struct ConsoleService {
    pub store: KpiStore,
    pub tenants: Arc<TenantDirectory>,
    pub quality: QualityDesk,
}

/// A validated GetKpis request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiQuery {
    pub period: Period,
    /// `t`, `q:<queue>` or `a:<agent>`.
    pub scope: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Checks a GetKpis request; `now_ms` fills an open end.
pub fn validate(request: &v1::GetKpisRequest, now_ms: i64) -> Result<KpiQuery, ConsoleError> {
    let period = match v1::KpiPeriod::try_from(request.period) {
        Ok(v1::KpiPeriod::QuarterHour) => Period::QuarterHour,
        Ok(v1::KpiPeriod::Hour | v1::KpiPeriod::Unspecified) => Period::Hour,
        Ok(v1::KpiPeriod::Day) => Period::Day,
        Err(_) => {
            return Err(ConsoleError::Invalid(format!(
                "period: unknown value {}; send KPI_PERIOD_QUARTER_HOUR, KPI_PERIOD_HOUR or KPI_PERIOD_DAY",
                request.period
            )));
        }
    };
    let scope = match (request.queue_id.as_str(), request.agent_id.as_str()) {
        ("", "") => "t".to_owned(),
        (queue, "") => {
            QueueId::new(queue).map_err(|e| ConsoleError::Invalid(format!("queue_id: {e}")))?;
            format!("q:{queue}")
        }
        ("", agent) => {
            AgentId::new(agent).map_err(|e| ConsoleError::Invalid(format!("agent_id: {e}")))?;
            format!("a:{agent}")
        }
        _ => {
            return Err(ConsoleError::Invalid(
                "queue_id and agent_id: KPIs are kept per queue and per agent, not per pair; send one of them".into(),
            ));
        }
    };
    if request.from_ms < 0 || request.to_ms < 0 {
        return Err(ConsoleError::Invalid(
            "from_ms and to_ms: milliseconds since the Unix epoch, not negative".into(),
        ));
    }
    let to_ms = if request.to_ms == 0 {
        now_ms
    } else {
        request.to_ms
    };
    let from_ms = if request.from_ms == 0 {
        to_ms - DEFAULT_RANGE_MS
    } else {
        request.from_ms
    };
    if from_ms >= to_ms {
        return Err(ConsoleError::Invalid(format!(
            "from_ms ({from_ms}) must be before to_ms ({to_ms})"
        )));
    }
    if to_ms - from_ms > MAX_RANGE_MS {
        return Err(ConsoleError::Invalid(format!(
            "the range from_ms..to_ms is longer than {} days; ask for a shorter one",
            MAX_RANGE_MS / 86_400_000
        )));
    }
    Ok(KpiQuery {
        period,
        scope,
        from_ms,
        to_ms,
    })
}

impl ConsoleService {
    /// The KPIs `query` asks for, for `tenant`.
    pub async fn kpis(
        &self,
        tenant: &str,
        query: &KpiQuery,
    ) -> Result<v1::GetKpisResponse, ConsoleError> {
        let config = self
            .tenants
            .get(tenant)
            .ok_or_else(|| ConsoleError::UnknownTenant(tenant.to_owned()))?;
        let tz = config.hours().time_zone;
        let periods = self
            .store
            .periods(
                tenant,
                &query.scope,
                query.period,
                query.from_ms,
                query.to_ms,
            )
            .await?;
        Ok(v1::GetKpisResponse {
            periods: periods
                .iter()
                .map(|(bucket, counters)| figures::kpis(tz, *bucket, counters))
                .collect(),
            time_zone: tz.name().to_owned(),
        })
    }
}

#[tonic::async_trait]
impl Console for ConsoleService {
    #[instrument(skip_all, fields(tenant))]
    async fn get_kpis(
        &self,
        request: Request<v1::GetKpisRequest>,
    ) -> Result<Response<v1::GetKpisResponse>, Status> {
        let tenant = careline_kit::authorize(&request, READ_KPIS)?;
        tracing::Span::current().record("tenant", tenant.as_str());
        let query = validate(request.get_ref(), chrono::Utc::now().timestamp_millis())?;
        Ok(Response::new(self.kpis(&tenant, &query).await?))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn score_interaction(
        &self,
        request: Request<v1::ScoreInteractionRequest>,
    ) -> Result<Response<v1::ScoreInteractionResponse>, Status> {
        let tenant = careline_kit::authorize(&request, REVIEW)?;
        let span = tracing::Span::current();
        span.record("tenant", tenant.as_str());
        span.record("interaction_id", request.get_ref().interaction_id.as_str());
        let reviewer = careline_kit::auth::key_id(&request);
        Ok(Response::new(
            self.quality
                .score(&tenant, &reviewer, request.get_ref())
                .await?,
        ))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn mark_for_coaching(
        &self,
        request: Request<v1::MarkForCoachingRequest>,
    ) -> Result<Response<v1::MarkForCoachingResponse>, Status> {
        let tenant = careline_kit::authorize(&request, REVIEW)?;
        let span = tracing::Span::current();
        span.record("tenant", tenant.as_str());
        span.record("interaction_id", request.get_ref().interaction_id.as_str());
        let reviewer = careline_kit::auth::key_id(&request);
        Ok(Response::new(
            self.quality
                .mark_for_coaching(&tenant, &reviewer, request.get_ref())
                .await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_and_agent_together_are_refused_naming_both() {
        let request = v1::GetKpisRequest {
            queue_id: "general".into(),
            agent_id: "ana".into(),
            ..Default::default()
        };
        let err = validate(&request, 1_000_000_000).unwrap_err();
        assert!(err.to_string().contains("queue_id and agent_id"), "{err}");
    }

    #[test]
    fn open_range_is_the_last_day_and_a_reversed_one_is_refused() {
        let now = 10 * DEFAULT_RANGE_MS;
        let query = validate(&v1::GetKpisRequest::default(), now).unwrap();
        assert_eq!((query.from_ms, query.to_ms), (now - DEFAULT_RANGE_MS, now));
        assert_eq!(query.scope, "t");
        let reversed = v1::GetKpisRequest {
            from_ms: 20,
            to_ms: 10,
            ..Default::default()
        };
        assert!(validate(&reversed, now).is_err());
        let bad_queue = v1::GetKpisRequest {
            queue_id: "no spaces".into(),
            ..Default::default()
        };
        assert!(
            validate(&bad_queue, now)
                .unwrap_err()
                .to_string()
                .starts_with("queue_id")
        );
    }
}
