//! Background work every router and presence replica runs: keep each
//! tenant's routing settings and logged-in agents in Redis in step with its
//! configuration, run due timers, relay the outbox to NATS and export queue
//! and outbox gauges. Replicas share the work safely: timers and outbox entries are
//! claimed atomically.

use std::time::Duration;

use std::sync::Arc;

use careline_bus::TenantDirectory;
use tokio_util::sync::CancellationToken;

use crate::error::RoutingError;
use crate::relay::{OutboxRelay, outbox_lag};
use crate::store::RoutingStore;

/// How often due timers are looked for.
pub const TIMER_TICK: Duration = Duration::from_millis(50);
/// How long the relay blocks waiting for new events.
pub const RELAY_BLOCK_MS: usize = 200;
/// How often stale outbox entries are reclaimed and outbox lag is exported.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(2);
/// How often queue gauges are exported (each export reads every agent's state).
pub const GAUGES_EVERY: Duration = Duration::from_secs(10);
/// Back-off after a failure (Redis or NATS unreachable).
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Runs until `shutdown` is cancelled.
pub async fn run(
    store: RoutingStore,
    relay: OutboxRelay,
    tenants: Arc<TenantDirectory>,
    shutdown: CancellationToken,
) {
    tokio::join!(
        sync_and_run_timers(&store, &tenants, &shutdown),
        relay_events(&relay, &tenants, &shutdown),
        housekeeping(&store, &relay, &tenants, &shutdown),
    );
}

async fn sync_tenants(store: &RoutingStore, tenants: &TenantDirectory) -> bool {
    let mut ok = true;
    for id in tenants.tenant_ids() {
        let Some(config) = tenants.get(&id) else {
            continue;
        };
        let synced = match store.sync_tenant(&config).await {
            Ok(()) => store.refresh_agents(&config).await.map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = synced {
            tracing::warn!(tenant = %id, %error, "could not apply tenant configuration to routing state");
            ok = false;
        }
    }
    ok
}

async fn sync_and_run_timers(
    store: &RoutingStore,
    tenants: &TenantDirectory,
    shutdown: &CancellationToken,
) {
    let mut changes = tenants.changes();
    let mut synced = false;
    let mut tick = tokio::time::interval(TIMER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() { return; }
                synced = false;
            }
            _ = tick.tick() => {}
        }
        if !synced {
            synced = sync_tenants(store, tenants).await;
        }
        // Scripts run only for tenants with something due: idle tenants cost
        // one pipelined read per tick, whatever their number.
        let checks = match store.timer_check(&tenants.tenant_ids()).await {
            Ok(checks) => checks,
            Err(error) => {
                tracing::debug!(%error, "timers not checked");
                continue;
            }
        };
        for check in checks {
            if check.settings_lost {
                synced = false;
            }
            if !check.due {
                continue;
            }
            loop {
                match store.run_timers(&check.tenant).await {
                    Ok(run) if run.still_due > 0 && !shutdown.is_cancelled() => continue,
                    Ok(_) => break,
                    Err(RoutingError::FailedPrecondition(_)) => {
                        synced = false;
                        break;
                    }
                    Err(error) => {
                        tracing::debug!(tenant = %check.tenant, %error, "timers not run");
                        break;
                    }
                }
            }
        }
    }
}

async fn relay_events(
    relay: &OutboxRelay,
    tenants: &TenantDirectory,
    shutdown: &CancellationToken,
) {
    // After a failure the entries this relay read stay pending in its name:
    // publish those first (in order), then new ones.
    let mut backlog = false;
    loop {
        let ids = tenants.tenant_ids();
        let pass = async {
            if backlog {
                relay.relay_backlog(&ids).await
            } else {
                relay.relay_new(&ids, RELAY_BLOCK_MS).await
            }
        };
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = pass => result,
        };
        match result {
            Ok(published) => {
                if backlog && published == 0 {
                    backlog = false;
                }
            }
            Err(error) => {
                backlog = true;
                tracing::warn!(%error, "relaying events failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_AFTER) => {}
                }
            }
        }
        if ids.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(TIMER_TICK) => {}
            }
        }
    }
}

async fn housekeeping(
    store: &RoutingStore,
    relay: &OutboxRelay,
    tenants: &TenantDirectory,
    shutdown: &CancellationToken,
) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    let mut gauges_due = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let export_gauges = tokio::time::Instant::now() >= gauges_due;
        if export_gauges {
            gauges_due += GAUGES_EVERY;
        }
        for tenant in tenants.tenant_ids() {
            if let Err(error) = relay.ensure_group(&tenant).await {
                tracing::debug!(%tenant, %error, "outbox group not ensured");
                continue;
            }
            if let Err(error) = relay.reclaim(&tenant).await {
                tracing::warn!(%tenant, %error, "reclaiming outbox entries failed");
            }
            // Every replica exports it: whichever is scraped shows the lag.
            match outbox_lag(&mut store.connection(), &tenant).await {
                Ok(lag) => {
                    let labels = [("tenant", tenant.clone())];
                    metrics::gauge!("careline_outbox_events_pending", &labels)
                        .set(lag.events as f64);
                    metrics::gauge!("careline_outbox_oldest_age_seconds", &labels)
                        .set(lag.oldest_age_ms as f64 / 1000.0);
                }
                Err(error) => tracing::debug!(%tenant, %error, "outbox lag not exported"),
            }
            if !export_gauges {
                continue;
            }
            let Some(config) = tenants.get(&tenant) else {
                continue;
            };
            match store.queue_stats(&config, None).await {
                Ok(stats) => {
                    for queue in stats.queues {
                        let labels = [
                            ("tenant", tenant.clone()),
                            ("queue", queue.queue_id.clone()),
                        ];
                        metrics::gauge!("careline_queue_waiting", &labels)
                            .set(f64::from(queue.waiting));
                        metrics::gauge!("careline_queue_urgent_waiting", &labels)
                            .set(f64::from(queue.urgent_waiting));
                        metrics::gauge!("careline_queue_oldest_wait_seconds", &labels)
                            .set(queue.oldest_wait_ms as f64 / 1000.0);
                        metrics::gauge!("careline_queue_service_level", &labels)
                            .set(queue.service_level);
                        metrics::gauge!("careline_queue_agents_available", &labels)
                            .set(f64::from(queue.agents_available));
                        metrics::gauge!("careline_queue_agents_busy", &labels)
                            .set(f64::from(queue.agents_busy));
                    }
                }
                Err(error) => tracing::debug!(%tenant, %error, "queue gauges not exported"),
            }
        }
    }
}
