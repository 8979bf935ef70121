//! Background work every router and presence replica runs, as concurrent
//! tasks: keep each tenant's routing settings and logged-in agents in Redis in
//! step with its configuration (only tenants whose configuration changed, or
//! whose settings Redis lost), run due timers with a budget per tenant per
//! tick, relay the outbox to NATS and export queue and outbox gauges.
//! Replicas share the work safely: timers and outbox entries are claimed
//! atomically. Failures are counted and logged per tenant (see
//! [`failures`](crate::failures)).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use careline_bus::TenantDirectory;
use careline_domain::tenant::TenantConfig;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::RoutingError;
use crate::failures::{ALL_TENANTS, FailureStreaks, WorkerTask};
use crate::relay::{OutboxRelay, outbox_lag};
use crate::store::RoutingStore;

/// How often due timers are looked for.
pub const TIMER_TICK: Duration = Duration::from_millis(50);
/// How long one tick may keep running rounds of timer batches before the
/// timers are checked again (newly due tenants join at the next check).
pub const TIMER_TICK_BUDGET: Duration = TIMER_TICK;
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
    let resync = ResyncRequests::default();
    tokio::join!(
        sync_tenants(&store, &tenants, &resync, &shutdown),
        run_due_timers(&store, &tenants, &resync, &shutdown),
        relay_events(&relay, &tenants, &shutdown),
        housekeeping(&store, &relay, &tenants, &shutdown),
    );
}

/// Tenants the timer loop found with stale routing state (settings lost when
/// Redis restarted empty, or a script refusing for lack of them), waiting for
/// the sync task to re-apply their configuration.
#[derive(Debug, Default)]
struct ResyncRequests {
    tenants: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl ResyncRequests {
    fn request(&self, tenant: &str) {
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant.to_owned());
        self.wake.notify_one();
    }

    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.tenants.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Applies configuration changes to routing state, one changed tenant at a
/// time: the directory's per-tenant revisions are compared with the ones this
/// replica last applied, so a missed notification cannot lose a change and an
/// unchanged tenant is never touched. Runs beside the timer loop, never in it.
async fn sync_tenants(
    store: &RoutingStore,
    tenants: &TenantDirectory,
    resync: &ResyncRequests,
    shutdown: &CancellationToken,
) {
    let mut changes = tenants.changes();
    let mut applied: HashMap<String, u64> = HashMap::new();
    let mut failures = FailureStreaks::default();
    loop {
        changes.borrow_and_update();
        let current = tenants.revisions();
        // A removed tenant's routing state stays in Redis (its interactions
        // remain readable); there is simply nothing more to apply.
        applied.retain(|id, _| current.contains_key(id));
        failures.retain_tenants(|id| current.contains_key(id));
        for id in resync.take() {
            applied.remove(&id);
        }
        let mut failed = false;
        for (id, revision) in &current {
            if applied.get(id) == Some(revision) {
                continue;
            }
            let Some(config) = tenants.get(id) else {
                continue;
            };
            if shutdown.is_cancelled() {
                return;
            }
            match sync_tenant(store, &config).await {
                Ok(agents_changed) => {
                    tracing::info!(tenant = %id, revision, agents_changed, "tenant configuration applied to routing state");
                    failures.succeeded(WorkerTask::TenantSync, id);
                    applied.insert(id.clone(), *revision);
                }
                Err(error) => {
                    failures.failed(WorkerTask::TenantSync, id, &error);
                    failed = true;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() { return; }
            }
            () = resync.wake.notified() => {}
            () = tokio::time::sleep(RETRY_AFTER), if failed => {}
        }
    }
}

/// Writes a tenant's settings and targets, then re-profiles its logged-in
/// agents; returns how many agents changed.
async fn sync_tenant(store: &RoutingStore, config: &TenantConfig) -> Result<usize, RoutingError> {
    store.sync_tenant(config).await?;
    store.refresh_agents(config).await
}

/// Runs due timers every [`TIMER_TICK`], fairly: each tenant with due timers
/// gets one batch ([`TIMER_BATCH`](crate::store::TIMER_BATCH)) per round, rounds
/// repeat while timers remain due and the tick's [`TIMER_TICK_BUDGET`] lasts,
/// and the tenant served first rotates from tick to tick. A tenant with a
/// backlog of thousands thus delays another tenant's single timer by one
/// batch, not by its whole backlog.
async fn run_due_timers(
    store: &RoutingStore,
    tenants: &TenantDirectory,
    resync: &ResyncRequests,
    shutdown: &CancellationToken,
) {
    let mut failures = FailureStreaks::default();
    let mut first_next: Bound<String> = Bound::Unbounded;
    let mut tick = tokio::time::interval(TIMER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Scripts run only for tenants with something due: idle tenants cost
        // one pipelined read per tick, whatever their number.
        let ids = tenants.tenant_ids();
        failures.retain_tenants(|id| ids.binary_search_by(|t| t.as_str().cmp(id)).is_ok());
        let checks = match store.timer_check(&ids).await {
            Ok(checks) => {
                failures.succeeded(WorkerTask::TimerCheck, ALL_TENANTS);
                checks
            }
            Err(error) => {
                failures.failed(WorkerTask::TimerCheck, ALL_TENANTS, &error);
                continue;
            }
        };
        let mut due = VecDeque::new();
        for check in checks {
            if let Some(error) = &check.unreadable {
                failures.failed(WorkerTask::TimerCheck, &check.tenant, error);
                continue;
            }
            failures.succeeded(WorkerTask::TimerCheck, &check.tenant);
            if check.settings_lost {
                resync.request(&check.tenant);
            } else if check.due {
                due.push_back(check.tenant);
            }
        }
        // Tenants come sorted by id; start where the last tick left off.
        let start = due
            .iter()
            .position(|tenant| starts_at_or_after(&first_next, tenant))
            .unwrap_or(0);
        due.rotate_left(start);
        first_next = match due.front() {
            Some(first) => Bound::Excluded(first.clone()),
            None => Bound::Unbounded,
        };
        let budget = tokio::time::Instant::now() + TIMER_TICK_BUDGET;
        while let Some(tenant) = due.pop_front() {
            if shutdown.is_cancelled() {
                return;
            }
            if tokio::time::Instant::now() >= budget {
                // Out of time: the next tick starts with the tenant not served.
                first_next = Bound::Included(tenant);
                break;
            }
            match store.run_timers(&tenant).await {
                Ok(run) => {
                    failures.succeeded(WorkerTask::Timers, &tenant);
                    if run.still_due > 0 {
                        due.push_back(tenant);
                    }
                }
                Err(error) => {
                    failures.failed(WorkerTask::Timers, &tenant, &error);
                    // Settings missing or incomplete: rewritten from configuration.
                    if matches!(error, RoutingError::FailedPrecondition(_)) {
                        resync.request(&tenant);
                    }
                }
            }
        }
    }
}

/// Whether `tenant` is at or after `bound` in tenant id order.
fn starts_at_or_after(bound: &Bound<String>, tenant: &str) -> bool {
    match bound {
        Bound::Included(first) => tenant >= first.as_str(),
        Bound::Excluded(after) => tenant > after.as_str(),
        Bound::Unbounded => true,
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
