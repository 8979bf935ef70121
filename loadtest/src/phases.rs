//! The measured phases: a burst of pure routing decisions, a sustained
//! closed-loop lifecycle (create, accept, resolve), and an open-loop latency
//! run at a fixed create rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use careline_routing::RoutingStore;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::tenant::new_chat;

/// Longest a latency run waits for its stragglers after the last tick.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Clients of one Redis, shared by the phases: a few multiplexed connections
/// (as a few router replicas would hold) and a sequence for unique keys.
#[derive(Clone)]
pub struct Clients {
    stores: Arc<Vec<RoutingStore>>,
    tenant: Arc<str>,
    seq: Arc<AtomicU64>,
}

impl Clients {
    pub async fn connect(url: &str, connections: usize, tenant: &str) -> anyhow::Result<Self> {
        let mut stores = Vec::with_capacity(connections);
        for _ in 0..connections.max(1) {
            stores.push(RoutingStore::connect(url).await.context("connecting")?);
        }
        Ok(Self::of(stores, tenant))
    }

    /// Clients sharing one store, as a router replica's requests share its
    /// backend's store (whose scripts wake that replica's outbox relay).
    pub fn shared(store: &RoutingStore, tenant: &str) -> Self {
        Self::of(vec![store.clone()], tenant)
    }

    fn of(stores: Vec<RoutingStore>, tenant: &str) -> Self {
        Self {
            stores: Arc::new(stores),
            tenant: tenant.into(),
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn store(&self, n: usize) -> &RoutingStore {
        &self.stores[n % self.stores.len()]
    }

    /// One routing decision: a create script. Returns whether it was
    /// offered at once (queue position 0).
    async fn create(&self, n: usize) -> anyhow::Result<(bool, String)> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let created = self
            .store(n)
            .create_interaction(&self.tenant, &new_chat(seq))
            .await?;
        Ok((created.queue_position == 0, created.interaction_id))
    }

    /// The agent's side of an offered interaction: read the offer, accept it,
    /// resolve it (wrap-up 0, so the capacity is free again and the agent
    /// looks at the heads of its queues). Three scripts/reads, not measured
    /// as decisions.
    async fn work_off(&self, n: usize, id: &str) -> anyhow::Result<()> {
        let store = self.store(n);
        let ix = store.get_interaction(&self.tenant, id).await?;
        store
            .accept_offer(&self.tenant, &ix.offer_id, &ix.agent_id)
            .await?;
        store
            .resolve(&self.tenant, id, &ix.agent_id, "resolved", &[], None)
            .await?;
        Ok(())
    }
}

/// Counts of a throughput phase.
#[derive(Debug, Default, Clone, Copy)]
pub struct Throughput {
    pub creates: u64,
    pub offered: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Throughput {
    pub fn per_sec(&self) -> f64 {
        self.creates as f64 / self.elapsed.as_secs_f64()
    }
    pub fn offered_pct(&self) -> f64 {
        pct(self.offered, self.creates)
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// `concurrency` tasks issue creates back to back, `total` in all or until
/// `limit` passes. With `work_off`, each offered interaction is accepted and
/// resolved by the same task before its next create (closed loop).
pub async fn throughput(
    clients: &Clients,
    concurrency: usize,
    total: u64,
    limit: Duration,
    work_off: bool,
) -> Throughput {
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let mut tasks = JoinSet::new();
    for n in 0..concurrency {
        let clients = clients.clone();
        let issued = issued.clone();
        tasks.spawn(async move {
            let mut mine = Throughput::default();
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < total {
                match clients.create(n).await {
                    Ok((offered, id)) => {
                        mine.creates += 1;
                        if offered {
                            mine.offered += 1;
                            if work_off && clients.work_off(n, &id).await.is_err() {
                                mine.errors += 1;
                            }
                        }
                    }
                    Err(_) => mine.errors += 1,
                }
            }
            mine
        });
    }
    let mut sum = Throughput::default();
    while let Some(done) = tasks.join_next().await {
        let t = done.unwrap_or_default();
        sum.creates += t.creates;
        sum.offered += t.offered;
        sum.errors += t.errors;
    }
    sum.elapsed = start.elapsed();
    sum
}

/// Result of the open-loop latency phase.
#[derive(Debug)]
pub struct Latency {
    pub issued: u64,
    pub offered: u64,
    pub errors: u64,
    /// The first error seen, to tell overload (timeouts) from bugs.
    pub first_error: Option<String>,
    pub achieved_rate: f64,
    /// Call start -> reply, offered creates only, in microseconds.
    pub offer_us: Histogram<u64>,
    /// Call start -> reply, creates that were queued, in microseconds.
    pub queued_us: Histogram<u64>,
    /// Scheduled send time -> reply (includes any lag of the ticker).
    pub scheduled_us: Histogram<u64>,
}

impl Latency {
    pub fn offered_pct(&self) -> f64 {
        pct(self.offered, self.issued)
    }
}

enum Outcome {
    Offered { call_us: u64, scheduled_us: u64 },
    Queued { call_us: u64 },
    Failed(String),
}

/// Issues creates at `rate` per second for `duration` regardless of replies
/// (open loop); each create runs in its own task, and with `work_off` an
/// offered one is then accepted and resolved so that agents stay free.
pub async fn latency(
    clients: &Clients,
    rate: u64,
    duration: Duration,
    work_off: bool,
) -> anyhow::Result<Latency> {
    let total = rate * duration.as_secs();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tasks = JoinSet::new();
    let mut issued = 0u64;
    while issued < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while issued < due {
            let scheduled = start + Duration::from_secs_f64(issued as f64 / rate as f64);
            let clients = clients.clone();
            let n = issued as usize;
            tasks.spawn(async move {
                let call = Instant::now();
                match clients.create(n).await {
                    Ok((true, id)) => {
                        let outcome = Outcome::Offered {
                            call_us: micros(call.elapsed()),
                            scheduled_us: micros(scheduled.elapsed()),
                        };
                        if work_off && let Err(e) = clients.work_off(n, &id).await {
                            return Outcome::Failed(format!("accept/resolve: {e:#}"));
                        }
                        outcome
                    }
                    Ok((false, _)) => Outcome::Queued {
                        call_us: micros(call.elapsed()),
                    },
                    Err(e) => Outcome::Failed(format!("create: {e:#}")),
                }
            });
            issued += 1;
        }
    }
    let achieved_rate = issued as f64 / start.elapsed().as_secs_f64();
    let mut result = Latency {
        issued,
        offered: 0,
        errors: 0,
        first_error: None,
        achieved_rate,
        offer_us: histogram()?,
        queued_us: histogram()?,
        scheduled_us: histogram()?,
    };
    let drain = async {
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Outcome::Offered {
                    call_us,
                    scheduled_us,
                }) => {
                    result.offered += 1;
                    result.offer_us.saturating_record(call_us);
                    result.scheduled_us.saturating_record(scheduled_us);
                }
                Ok(Outcome::Queued { call_us }) => {
                    result.queued_us.saturating_record(call_us);
                }
                Ok(Outcome::Failed(e)) => {
                    result.errors += 1;
                    result.first_error.get_or_insert(e);
                }
                Err(e) => {
                    result.errors += 1;
                    result.first_error.get_or_insert(e.to_string());
                }
            }
        }
    };
    tokio::time::timeout(DRAIN_DEADLINE, drain)
        .await
        .context("latency run did not drain")?;
    Ok(result)
}

/// An empty histogram of microseconds, up to a minute.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// A duration in whole microseconds, at least 1 (the histograms' lower bound).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}
