//! The operator's Prometheus metrics, recorded here only (served by careline-kit's
//! `/metrics` endpoint).

use std::time::Duration;

use crate::Error;

/// Reconciles finished, by `kind` (`tenant`, `contact_queue`) and `result` (`ok` or the
/// error's label).
pub const RECONCILES: &str = "careline_operator_reconciles_total";
/// How long reconciles took, by `kind`.
pub const RECONCILE_SECONDS: &str = "careline_operator_reconcile_duration_seconds";
/// Reconciles that found a resource invalid (reported Ready=False), by `kind` and `reason`.
pub const INVALID: &str = "careline_operator_invalid_total";
/// Tenant configurations written to the bucket (changed ones only).
pub const WRITES: &str = "careline_operator_tenant_writes_total";
/// 1 while this replica holds the leader lease and runs the controllers, else 0.
pub const LEADER: &str = "careline_operator_leader";

/// Records one finished reconcile of a `kind` resource.
pub fn reconciled<T>(kind: &'static str, result: &Result<T, Error>, took: Duration) {
    let label = match result {
        Ok(_) => "ok",
        Err(error) => error.metric_label(),
    };
    metrics::counter!(RECONCILES, "kind" => kind, "result" => label).increment(1);
    metrics::histogram!(RECONCILE_SECONDS, "kind" => kind).record(took.as_secs_f64());
}

/// Records a resource reported invalid with `reason`.
pub fn invalid(kind: &'static str, reason: &str) {
    metrics::counter!(INVALID, "kind" => kind, "reason" => reason.to_owned()).increment(1);
}

/// Records a tenant configuration written to the bucket.
pub fn written() {
    metrics::counter!(WRITES).increment(1);
}

/// Records whether this replica leads.
pub fn leading(yes: bool) {
    metrics::gauge!(LEADER).set(if yes { 1.0 } else { 0.0 });
}
