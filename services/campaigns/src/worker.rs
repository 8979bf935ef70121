//! The scheduler every replica runs: per tenant with campaigns, each pass
//! claims the due targets of every campaign inside its window (one Lua
//! script per campaign, so replicas never take the same target) and starts
//! their attempts. Due times live in Redis, so a schedule survives any
//! restart; a claim is a lease, so a replica dying mid-attempt leaves the
//! target (with the same attempt number) to another.

use std::time::Duration;

use careline_kit::Shutdown;

use crate::campaigns::Campaigns;

/// Pause between two passes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Runs due targets until `shutdown`.
pub async fn run(campaigns: Campaigns, shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        for tenant in campaigns.tenants.tenant_ids() {
            let active = campaigns
                .tenants
                .get(&tenant)
                .is_some_and(|config| !config.outreach.campaigns.is_empty());
            if !active || shutdown.is_triggered() {
                continue;
            }
            if let Err(error) = campaigns.run_due(&tenant).await {
                tracing::warn!(%error, tenant, "campaign pass failed; retrying next pass");
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}
