//! The due worker every replica runs: per tenant with surveys on, claims the
//! surveys whose time has come (at most `SEND_BUDGET` per tenant per pass)
//! and sends them. Due times live in Redis, so a delayed survey survives any
//! restart; a claim is a lease, so a replica dying mid-send leaves the survey
//! to another.

use std::sync::Arc;
use std::time::Duration;

use careline_kit::Shutdown;
use tokio::sync::Notify;

use crate::surveys::Surveys;

/// Pause between two passes when nothing woke the worker.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Sends due surveys until `shutdown`; `scheduled` wakes it early.
pub async fn run(surveys: Surveys, scheduled: Arc<Notify>, shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        for tenant in surveys.tenants.tenant_ids() {
            let enabled = surveys
                .tenants
                .get(&tenant)
                .is_some_and(|config| !config.surveys.channels.is_empty());
            if !enabled || shutdown.is_triggered() {
                continue;
            }
            if let Err(error) = surveys.send_due(&tenant).await {
                tracing::warn!(%error, tenant, "sending due surveys failed; retrying next pass");
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = scheduled.notified() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}
