//! Background work every router and presence replica runs, as concurrent
//! tasks: keep each tenant's routing settings and logged-in agents in Redis in
//! step with its configuration (only tenants whose configuration changed, or
//! whose settings Redis lost), run due timers with a budget per tenant per
//! tick, relay the outbox to NATS and export queue and outbox gauges.
//!
//! Every command names one tenant (one Redis Cluster slot). A tenant is
//! visited when this replica's scripts touched it (see
//! [`activity`](crate::activity)), when its next timer comes due, and on a
//! slow sweep that finds what other replicas left (a replica that died with
//! timers set or events unrelayed). Idle tenants cost a few reads per sweep,
//! whatever the number of tenants.
//!
//! Replicas share the work safely: timers and outbox entries are claimed
//! atomically. Failures are counted and logged per tenant (see
//! [`failures`](crate::failures)).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use careline_bus::{Publisher, TenantDirectory, config_applied};
use careline_domain::tenant::TenantConfig;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::activity::TenantSignal;
use crate::error::RoutingError;
use crate::failures::{ALL_TENANTS, FailureStreaks, WorkerTask};
use crate::relay::{OutboxRelay, RELAY_BATCH, outbox_lag};
use crate::store::RoutingStore;

/// How often due timers are looked for (in tenants touched or known due).
pub const TIMER_TICK: Duration = Duration::from_millis(50);
/// How often every tenant's timers are checked, to find timers set by other
/// replicas: a timer a dead replica left is run at most this late.
pub const TIMER_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often every tenant's outbox is read, to relay events other replicas
/// left (a replica that died before relaying what it wrote).
pub const RELAY_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How long one tick may keep running rounds of timer batches before the
/// timers are checked again (newly due tenants join at the next check).
pub const TIMER_TICK_BUDGET: Duration = TIMER_TICK;
/// How often stale outbox entries are reclaimed and outbox lag is exported.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(2);
/// How often queue gauges are exported (each export reads every agent's state).
pub const GAUGES_EVERY: Duration = Duration::from_secs(10);
/// How often each tenant's ended interactions past its `history_retention_days` are
/// removed (each pass is one read for a tenant with nothing to remove).
pub const HISTORY_TRIM_EVERY: Duration = Duration::from_secs(60);
/// Back-off after a failure (Redis or NATS unreachable).
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Runs until `shutdown` is cancelled.
pub async fn run(
    store: RoutingStore,
    relay: OutboxRelay,
    tenants: Arc<TenantDirectory>,
    shutdown: CancellationToken,
) {
    // Tenants with stale routing state (settings lost when Redis restarted
    // empty, or a script refusing for lack of them), found by the timer
    // loop, waiting for the sync task to re-apply their configuration.
    let resync = TenantSignal::default();
    tokio::join!(
        sync_tenants(&store, relay.publisher(), &tenants, &resync, &shutdown),
        run_due_timers(&store, &tenants, &resync, &shutdown),
        relay_events(&relay, &store.activity().outbox, &tenants, &shutdown),
        housekeeping(&store, &relay, &tenants, &shutdown),
    );
}

/// Applies configuration changes to routing state, one changed tenant at a
/// time: the directory's per-tenant revisions are compared with the ones this
/// replica last applied, so a missed notification cannot lose a change and an
/// unchanged tenant is never touched. Runs beside the timer loop, never in it.
async fn sync_tenants(
    store: &RoutingStore,
    publisher: &Publisher,
    tenants: &TenantDirectory,
    resync: &TenantSignal,
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
                    // Tells `careline config apply` (and anyone watching) the revision
                    // works now; losing this only makes `apply` wait in vain.
                    if let Err(error) = config_applied::publish(publisher, id, *revision).await {
                        tracing::debug!(tenant = %id, %error, "could not announce the applied configuration");
                    }
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
            () = resync.raised() => {}
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
    resync: &TenantSignal,
    shutdown: &CancellationToken,
) {
    let mut failures = FailureStreaks::default();
    let mut first_next: Bound<String> = Bound::Unbounded;
    // When each tenant's next timer is due, as last read.
    let mut next_due: HashMap<String, Instant> = HashMap::new();
    let mut next_sweep = Instant::now();
    let mut tick = tokio::time::interval(TIMER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Checked: tenants this replica touched, tenants whose next timer is
        // due, and on the sweep every tenant.
        let ids = tenants.tenant_ids();
        let touched = store.activity().timers.take();
        let now = Instant::now();
        let sweep = now >= next_sweep;
        if sweep {
            next_sweep = now + TIMER_SWEEP_EVERY;
            next_due.retain(|id, _| ids.binary_search(id).is_ok());
            failures.retain_tenants(|id| ids.binary_search_by(|t| t.as_str().cmp(id)).is_ok());
        }
        let to_check: Vec<String> = ids
            .into_iter()
            .filter(|id| {
                sweep || touched.contains(id) || next_due.get(id).is_some_and(|at| *at <= now)
            })
            .collect();
        if to_check.is_empty() {
            continue;
        }
        let checks = match store.timer_check(&to_check).await {
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
            match check.next_due_in {
                Some(due_in) => next_due.insert(check.tenant.clone(), now + due_in),
                None => next_due.remove(&check.tenant),
            };
            if check.settings_lost {
                resync.raise(&check.tenant);
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
        let budget = Instant::now() + TIMER_TICK_BUDGET;
        while let Some(tenant) = due.pop_front() {
            if shutdown.is_cancelled() {
                return;
            }
            if Instant::now() >= budget {
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
                    if matches!(error, RoutingError::SettingsNotLoaded(_)) {
                        resync.raise(&tenant);
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

/// Relays the outbox of every tenant this replica's scripts touched, at
/// once, and of every tenant on the sweep. A tenant with more than a batch
/// waiting goes to the back of the line, so a busy tenant cannot hold up
/// another's events by more than a batch. After a failure the entries this
/// relay read stay pending in its name: those are published first (in
/// order), after a pause, then new ones.
async fn relay_events(
    relay: &OutboxRelay,
    touched: &TenantSignal,
    tenants: &TenantDirectory,
    shutdown: &CancellationToken,
) {
    let mut backlog: BTreeSet<String> = BTreeSet::new();
    let mut next_sweep = Instant::now();
    loop {
        let ids = tenants.tenant_ids();
        let mut todo: BTreeSet<String> = touched.take();
        todo.extend(backlog.iter().cloned());
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + RELAY_SWEEP_EVERY;
            backlog.retain(|id| ids.binary_search(id).is_ok());
            todo.extend(ids.iter().cloned());
        }
        let mut todo: VecDeque<String> = todo
            .into_iter()
            .filter(|id| ids.binary_search(id).is_ok())
            .collect();
        let mut failed = false;
        while let Some(tenant) = todo.pop_front() {
            if shutdown.is_cancelled() {
                return;
            }
            let in_backlog = backlog.contains(&tenant);
            let result = if in_backlog {
                relay.relay_backlog(&tenant).await
            } else {
                relay.relay_new(&tenant).await
            };
            match result {
                Ok(0) if in_backlog => {
                    backlog.remove(&tenant);
                    todo.push_back(tenant);
                }
                Ok(published) if in_backlog || published >= RELAY_BATCH => {
                    // Behind the others, including tenants touched meanwhile.
                    for id in touched.take() {
                        if id != tenant && !todo.contains(&id) && ids.binary_search(&id).is_ok() {
                            todo.push_back(id);
                        }
                    }
                    todo.push_back(tenant);
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%tenant, %error, "relaying events failed; retrying");
                    backlog.insert(tenant);
                    failed = true;
                }
            }
        }
        if failed {
            // Not woken by new events meanwhile: NATS is likely down.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RETRY_AFTER) => {}
            }
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = touched.raised() => {}
            _ = tokio::time::sleep_until(next_sweep) => {}
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
    let mut gauges_due = Instant::now();
    let mut trim_due = Instant::now();
    // Tenants whose outbox group this replica has made sure of (the relay
    // re-creates it if Redis lost it).
    let mut grouped: HashSet<String> = HashSet::new();
    // Per tenant, the event sequence at its last gauge export and whether
    // anything was waiting then: a tenant with no new event and nothing
    // waiting has the same gauges, and is not read again.
    let mut exported: HashMap<String, (u64, bool)> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let export_gauges = Instant::now() >= gauges_due;
        if export_gauges {
            gauges_due += GAUGES_EVERY;
        }
        let trim_history = Instant::now() >= trim_due;
        if trim_history {
            trim_due += HISTORY_TRIM_EVERY;
        }
        let ids = tenants.tenant_ids();
        grouped.retain(|id| ids.binary_search(id).is_ok());
        exported.retain(|id, _| ids.binary_search(id).is_ok());
        for tenant in ids {
            if !grouped.contains(&tenant) {
                if let Err(error) = relay.ensure_group(&tenant).await {
                    tracing::debug!(%tenant, %error, "outbox group not ensured");
                    continue;
                }
                grouped.insert(tenant.clone());
            }
            // Every replica exports it: whichever is scraped shows the lag.
            match outbox_lag(&mut store.connection(), &tenant).await {
                Ok(lag) => {
                    let labels = [("tenant", tenant.clone())];
                    metrics::gauge!("careline_outbox_events_pending", &labels)
                        .set(lag.events as f64);
                    metrics::gauge!("careline_outbox_oldest_age_seconds", &labels)
                        .set(lag.oldest_age_ms as f64 / 1000.0);
                    // Entries a dead replica's relay read but never published.
                    if lag.events > 0
                        && let Err(error) = relay.reclaim(&tenant).await
                    {
                        tracing::warn!(%tenant, %error, "reclaiming outbox entries failed");
                    }
                }
                Err(error) => tracing::debug!(%tenant, %error, "outbox lag not exported"),
            }
            let Some(config) = tenants.get(&tenant) else {
                continue;
            };
            if trim_history {
                trim_ended(store, &config).await;
            }
            if !export_gauges {
                continue;
            }
            let sequence = match store.event_sequence(&tenant).await {
                Ok(sequence) => sequence,
                Err(error) => {
                    tracing::debug!(%tenant, %error, "queue gauges not exported");
                    continue;
                }
            };
            if exported.get(&tenant) == Some(&(sequence, false)) {
                continue;
            }
            match store.queue_stats(&config, None).await {
                Ok(stats) => {
                    let waiting = stats.queues.iter().any(|q| q.waiting > 0);
                    exported.insert(tenant.clone(), (sequence, waiting));
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

/// Removes the tenant's interactions that ended longer ago than its
/// `routing.history_retention_days`.
async fn trim_ended(store: &RoutingStore, config: &TenantConfig) {
    let retention_ms = i64::from(config.routing.history_retention_days) * 86_400_000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
    let cutoff = now_ms - retention_ms;
    match store.trim_history(&config.id, cutoff).await {
        Ok(0) => {}
        Ok(removed) => {
            tracing::info!(tenant = %config.id, removed, "ended interactions past their retention removed");
            metrics::counter!("careline_history_trimmed_total", "tenant" => config.id.clone())
                .increment(removed as u64);
        }
        Err(error) => tracing::warn!(tenant = %config.id, %error, "ended interactions not trimmed"),
    }
}
