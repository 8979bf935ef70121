//! The platform operator's view across tenants: per tenant, volumes, service
//! level, abandonment and NPS over a range, summed from the tenant-wide KPI
//! periods. Counts and rates only: no interaction, member or agent appears.
//!
//! It opens with the platform operator token (`--operator-token`,
//! `CARELINE_CONSOLE_OPERATOR_TOKEN`), a credential of the platform team that
//! belongs to no tenant, compared by its SHA-256 in constant time. A tenant API
//! key, even an `admin` one, never opens it: tenant users see their own tenant
//! only. [`OperatorGate`] is the one check, behind both the gRPC
//! `PlatformOverview` service and the `/operator` page.

use std::collections::HashMap;
use std::sync::Arc;

use careline_bus::TenantDirectory;
use careline_domain::secret::constant_time_eq;
use careline_kit::TenantAuth;
use careline_proto::v1::{self, platform_overview_server::PlatformOverview};
use sha2::{Digest, Sha256};
use tonic::service::Interceptor;
use tonic::{Request, Response, Status};

use crate::error::ConsoleError;
use crate::figures;
use crate::periods::{Bucket, Period};
use crate::store::KpiStore;

/// Most tenants one overview lists (in id order); `truncated` says when there were more.
pub const MAX_OVERVIEW_TENANTS: usize = 1000;
/// Default range: the 24 hours before `to_ms`.
pub const DEFAULT_OVERVIEW_MS: i64 = 24 * 3_600_000;
/// Longest range one overview sums (hourly periods).
pub const MAX_OVERVIEW_MS: i64 = 31 * 24 * 3_600_000;

/// Who presented a credential to the operator view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The platform operator token.
    Operator,
    /// A tenant's API key: never across tenants.
    TenantKey,
    /// Nothing, or a credential nobody owns.
    Unknown,
    /// No operator token is configured on this console.
    Off,
}

/// The one check of an operator credential.
#[derive(Clone)]
pub struct OperatorGate {
    /// SHA-256 of the operator token; `None`: the view is off.
    token_sha256: Option<[u8; 32]>,
    tenants: TenantAuth,
}

impl std::fmt::Debug for OperatorGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorGate").finish_non_exhaustive()
    }
}

impl OperatorGate {
    /// A gate opening with `token` ("" : off), telling tenant keys apart with `tenants`.
    pub fn new(token: &str, tenants: TenantAuth) -> Self {
        Self {
            token_sha256: (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into()),
            tenants,
        }
    }

    /// Whose credential `presented` is.
    pub fn check(&self, presented: &str) -> Access {
        let Some(expected) = &self.token_sha256 else {
            return Access::Off;
        };
        if presented.is_empty() {
            return Access::Unknown;
        }
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if constant_time_eq(&digest, expected) {
            Access::Operator
        } else if self.tenants.caller_for_key(presented).is_some() {
            Access::TenantKey
        } else {
            Access::Unknown
        }
    }
}

/// Refusal of a tenant key.
pub const TENANT_KEY_REFUSED: &str = "a tenant API key (even an admin one) never reads across tenants; the operator view opens with the platform operator token";
/// Refusal of an unknown credential.
pub const UNKNOWN_REFUSED: &str =
    "send the platform operator token as `authorization: Bearer <token>`";
/// Refusal when no token is configured.
pub const OFF_REFUSED: &str = "the operator view is off on this console: set CARELINE_CONSOLE_OPERATOR_TOKEN (--operator-token) to turn it on";

impl Interceptor for OperatorGate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = careline_kit::auth::presented_key(request.metadata())
            .ok()
            .flatten()
            .unwrap_or_default();
        match self.check(presented) {
            Access::Operator => Ok(request),
            Access::TenantKey => {
                tracing::info!("operator view refused a tenant key");
                Err(Status::permission_denied(TENANT_KEY_REFUSED))
            }
            Access::Unknown => Err(Status::unauthenticated(UNKNOWN_REFUSED)),
            Access::Off => Err(Status::permission_denied(OFF_REFUSED)),
        }
    }
}

/// The tenants' totals over `[from_ms, to_ms)`.
pub async fn overview(
    store: &KpiStore,
    tenants: &TenantDirectory,
    from_ms: i64,
    to_ms: i64,
) -> Result<v1::GetTenantOverviewResponse, ConsoleError> {
    let ids = tenants.tenant_ids();
    let truncated = ids.len() > MAX_OVERVIEW_TENANTS;
    let mut rows = Vec::with_capacity(ids.len().min(MAX_OVERVIEW_TENANTS));
    for id in ids.into_iter().take(MAX_OVERVIEW_TENANTS) {
        let Some(config) = tenants.get(&id) else {
            continue;
        };
        let tz = config.hours().time_zone;
        let mut totals: HashMap<String, i64> = HashMap::new();
        for (_, counters) in store
            .periods(&id, "t", Period::Hour, from_ms, to_ms)
            .await?
        {
            for (field, value) in counters {
                *totals.entry(field).or_default() += value;
            }
        }
        let bucket = Bucket {
            period: Period::Hour,
            start_ms: from_ms,
        };
        let k = figures::kpis(tz, bucket, &totals);
        rows.push(v1::TenantOverview {
            tenant_id: id,
            name: config.name.clone(),
            created: k.created,
            answered: k.answered,
            abandoned: k.abandoned,
            service_level: k.service_level,
            abandonment_rate: k.abandonment_rate,
            nps: k.nps,
            surveys_answered: k.surveys_answered,
        });
    }
    Ok(v1::GetTenantOverviewResponse {
        tenants: rows,
        truncated,
    })
}

/// Checks an overview range; `now_ms` fills an open end.
pub fn range(from_ms: i64, to_ms: i64, now_ms: i64) -> Result<(i64, i64), ConsoleError> {
    if from_ms < 0 || to_ms < 0 {
        return Err(ConsoleError::Invalid(
            "from_ms and to_ms: milliseconds since the Unix epoch, not negative".into(),
        ));
    }
    let to_ms = if to_ms == 0 { now_ms } else { to_ms };
    let from_ms = if from_ms == 0 {
        to_ms - DEFAULT_OVERVIEW_MS
    } else {
        from_ms
    };
    if from_ms >= to_ms || to_ms - from_ms > MAX_OVERVIEW_MS {
        return Err(ConsoleError::Invalid(format!(
            "from_ms..to_ms must be a range of at most {} days, from before to",
            MAX_OVERVIEW_MS / 86_400_000
        )));
    }
    Ok((from_ms, to_ms))
}

/// The `PlatformOverview` gRPC service (behind [`OperatorGate`]).
pub struct PlatformOverviewService {
    pub store: KpiStore,
    pub tenants: Arc<TenantDirectory>,
}

#[tonic::async_trait]
impl PlatformOverview for PlatformOverviewService {
    #[tracing::instrument(skip_all)]
    async fn get_tenant_overview(
        &self,
        request: Request<v1::GetTenantOverviewRequest>,
    ) -> Result<Response<v1::GetTenantOverviewResponse>, Status> {
        let request = request.get_ref();
        let (from_ms, to_ms) = range(
            request.from_ms,
            request.to_ms,
            chrono::Utc::now().timestamp_millis(),
        )?;
        Ok(Response::new(
            overview(&self.store, &self.tenants, from_ms, to_ms).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_range_is_the_last_day_and_a_long_one_is_refused() {
        let now = 100 * DEFAULT_OVERVIEW_MS;
        assert_eq!(range(0, 0, now).unwrap(), (now - DEFAULT_OVERVIEW_MS, now));
        assert!(range(1, now, now).is_err());
        assert!(range(now, now - 1, now).is_err());
    }
}
