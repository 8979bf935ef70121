//! The floor view's data: one feed per tenant on this replica, shared by every
//! viewer of it (as the router's `WatchQueueStats` feeds are), never one
//! reader per viewer.
//!
//! A feed follows the router's `WatchQueueStats` stream for the queues, and
//! the tenant's events on NATS as the signal that agents or today's KPIs
//! changed; it then reads the agents' states and today's KPIs the console
//! materialised (at most once per [`REFRESH_INTERVAL`]) and publishes a new
//! JSON snapshot when anything changed. Viewers work out "time in state"
//! themselves from when the state started. The feed ends with its last viewer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use careline_bus::TenantDirectory;
use careline_kit::{RouterKeys, Shutdown};
use careline_proto::v1;
use careline_proto::v1::router_client::RouterClient;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

use crate::figures;
use crate::periods::{Bucket, Period};
use crate::store::{AgentFloor, KpiStore};

/// Shortest time between two reads of agents and KPIs for one tenant.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Longest time between two reads, so lagging KPIs still show up.
pub const MAX_STALE: Duration = Duration::from_secs(5);
/// Pause before following the router's queue stats again after it failed.
pub const ROUTER_RETRY: Duration = Duration::from_secs(5);
/// Hours of history the charts show.
pub const CHART_HOURS: i64 = 6;
/// One waiting-contacts sample per this many milliseconds.
pub const SAMPLE_MS: i64 = 60_000;

/// One queue row of the floor view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueRow {
    pub id: String,
    pub name: String,
    pub waiting: u32,
    pub urgent_waiting: u32,
    /// Waiting per priority, urgent first: urgent, high, normal, low.
    pub by_priority: [u32; 4],
    pub oldest_wait_secs: i64,
    pub service_level_secs: u32,
    pub agents_available: u32,
    pub agents_busy: u32,
    pub agents_away: u32,
    /// This hour's service level, as the router counts it.
    pub service_level: f64,
}

/// Today's headline KPIs (the tenant's local day).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Today {
    pub answered: u64,
    pub abandoned: u64,
    pub service_level: f64,
    pub average_speed_of_answer_secs: f64,
    pub average_handle_secs: f64,
    pub abandonment_rate: f64,
    pub first_contact_resolution: f64,
    pub transfer_rate: f64,
    pub occupancy: f64,
    pub surveys_answered: u64,
    pub nps: f64,
    pub quality_reviews: u64,
    pub average_quality_score: f64,
    pub coaching_marked: u64,
}

/// Today's quality reviews of one agent (agents without any are not listed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentQuality {
    pub agent_id: String,
    pub reviews: u64,
    pub average_score: f64,
    pub coaching_marked: u64,
}

/// What a viewer is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloorSnapshot {
    pub time_zone: String,
    pub queues: Vec<QueueRow>,
    /// Why queues are missing, when they are.
    pub queues_unavailable: bool,
    pub agents: Vec<AgentFloor>,
    pub today: Today,
    pub quality: Vec<AgentQuality>,
    /// (minute start ms, contacts waiting), oldest first.
    pub waiting_series: Vec<(i64, u32)>,
    /// (hour start ms, service level), oldest first.
    pub service_level_series: Vec<(i64, f64)>,
}

/// A feed's latest snapshot, as JSON.
pub type SnapshotJson = Option<Arc<String>>;

/// The feeds of this replica.
#[derive(Clone)]
pub struct FloorFeeds {
    feeds: Arc<Mutex<HashMap<String, watch::Sender<SnapshotJson>>>>,
    store: KpiStore,
    tenants: Arc<TenantDirectory>,
    nats: async_nats::Client,
    router: RouterClient<Channel>,
    router_keys: RouterKeys,
    shutdown: Shutdown,
    tasks: TaskTracker,
}

impl FloorFeeds {
    /// Feeds reading `store`, following `router` with `router_keys`.
    pub fn new(
        store: KpiStore,
        tenants: Arc<TenantDirectory>,
        nats: async_nats::Client,
        router: RouterClient<Channel>,
        router_keys: RouterKeys,
        shutdown: Shutdown,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            feeds: Arc::default(),
            store,
            tenants,
            nats,
            router,
            router_keys,
            shutdown,
            tasks,
        }
    }

    /// The floor of `tenant`, as it changes; None until the first read.
    pub fn subscribe(&self, tenant: &str) -> watch::Receiver<SnapshotJson> {
        let mut feeds = self.feeds.lock().expect("feeds lock");
        if let Some(feed) = feeds.get(tenant) {
            return feed.subscribe();
        }
        let (feed, updates) = watch::channel(None);
        feeds.insert(tenant.to_owned(), feed.clone());
        let feeds = self.clone();
        let tenant = tenant.to_owned();
        self.tasks
            .spawn(async move { feeds.run(tenant, feed).await });
        updates
    }

    async fn run(self, tenant: String, feed: watch::Sender<SnapshotJson>) {
        let mut events = match self.nats.subscribe(format!("careline.{tenant}.>")).await {
            Ok(events) => Some(events),
            Err(error) => {
                tracing::warn!(%error, %tenant, "floor feed cannot follow the tenant's events; refreshing on a timer");
                None
            }
        };
        let mut stats: Option<tonic::Streaming<v1::GetQueueStatsResponse>> = None;
        let mut stats_retry_at = tokio::time::Instant::now();
        let mut queues: Option<Vec<v1::QueueStats>> = None;
        let mut ticker = tokio::time::interval(REFRESH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty = true;
        let mut last_read = tokio::time::Instant::now();
        let mut last_sample_minute = 0;
        loop {
            if stats.is_none() && tokio::time::Instant::now() >= stats_retry_at {
                stats = self.watch_stats(&tenant).await;
                if stats.is_none() {
                    stats_retry_at = tokio::time::Instant::now() + ROUTER_RETRY;
                }
            }
            tokio::select! {
                _ = self.shutdown.wait() => break,
                Some(_) = async { events.as_mut()?.next().await } => {
                    dirty = true;
                    continue;
                }
                update = async { stats.as_mut()?.next().await }, if stats.is_some() => {
                    match update {
                        Some(Ok(update)) => queues = Some(update.queues),
                        Some(Err(error)) => {
                            tracing::debug!(%error, %tenant, "router queue stats ended; following again shortly");
                            stats = None;
                            queues = None;
                            stats_retry_at = tokio::time::Instant::now() + ROUTER_RETRY;
                        }
                        None => {
                            stats = None;
                            stats_retry_at = tokio::time::Instant::now() + ROUTER_RETRY;
                        }
                    }
                    dirty = true;
                    continue;
                }
                _ = ticker.tick() => {}
            }
            // Under the lock: a new viewer either finds this feed or starts another.
            {
                let mut feeds = self.feeds.lock().expect("feeds lock");
                if feed.receiver_count() == 0 {
                    feeds.remove(&tenant);
                    return;
                }
            }
            if !dirty && last_read.elapsed() < MAX_STALE {
                continue;
            }
            let now_ms = chrono::Utc::now().timestamp_millis();
            let minute = now_ms - now_ms.rem_euclid(SAMPLE_MS);
            if minute != last_sample_minute
                && let Some(queues) = &queues
            {
                let waiting = queues.iter().map(|q| q.waiting).sum();
                if let Err(error) = self.store.sample_waiting(&tenant, minute, waiting).await {
                    tracing::debug!(%error, %tenant, "could not record a waiting sample");
                }
                last_sample_minute = minute;
            }
            match self.snapshot(&tenant, queues.as_deref(), now_ms).await {
                Ok(snapshot) => {
                    let json = serde_json::to_string(&snapshot).expect("snapshots serialise");
                    let changed = feed.borrow().as_deref() != Some(&json);
                    if changed {
                        feed.send_replace(Some(Arc::new(json)));
                    }
                }
                Err(error) => tracing::warn!(%error, %tenant, "floor view read failed; retrying"),
            }
            dirty = false;
            last_read = tokio::time::Instant::now();
        }
        self.feeds.lock().expect("feeds lock").remove(&tenant);
    }

    /// The router's queue stats stream for `tenant`, if it can be followed.
    async fn watch_stats(
        &self,
        tenant: &str,
    ) -> Option<tonic::Streaming<v1::GetQueueStatsResponse>> {
        let key = self.router_keys.get(tenant)?;
        let mut request = tonic::Request::new(v1::WatchQueueStatsRequest::default());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().ok()?);
        match self.router.clone().watch_queue_stats(request).await {
            Ok(stream) => Some(stream.into_inner()),
            Err(error) => {
                tracing::debug!(%error, %tenant, "router queue stats unavailable");
                None
            }
        }
    }

    async fn snapshot(
        &self,
        tenant: &str,
        queues: Option<&[v1::QueueStats]>,
        now_ms: i64,
    ) -> Result<FloorSnapshot, crate::ConsoleError> {
        let config = self
            .tenants
            .get(tenant)
            .ok_or_else(|| crate::ConsoleError::UnknownTenant(tenant.to_owned()))?;
        let tz = config.hours().time_zone;
        let day_start = Period::Day.start_ms(tz, now_ms);
        let day = Bucket {
            period: Period::Day,
            start_ms: day_start,
        };
        let today = self
            .store
            .periods(tenant, "t", Period::Day, day_start, now_ms + 1)
            .await?
            .first()
            .map(|(bucket, counters)| {
                let k = figures::kpis(tz, *bucket, counters);
                Today {
                    answered: k.answered,
                    abandoned: k.abandoned,
                    service_level: k.service_level,
                    average_speed_of_answer_secs: k.average_speed_of_answer_secs,
                    average_handle_secs: k.average_handle_secs,
                    abandonment_rate: k.abandonment_rate,
                    first_contact_resolution: k.first_contact_resolution,
                    transfer_rate: k.transfer_rate,
                    occupancy: k.occupancy,
                    surveys_answered: k.surveys_answered,
                    nps: k.nps,
                    quality_reviews: k.quality_reviews,
                    average_quality_score: k.average_quality_score,
                    coaching_marked: k.coaching_marked,
                }
            })
            .unwrap_or_default();
        let agents = self.store.agents(tenant).await?;
        let ids: Vec<String> = agents.iter().map(|a| a.agent_id.clone()).collect();
        let quality = ids
            .iter()
            .zip(self.store.agents_period(tenant, &ids, day).await?)
            .filter_map(|(agent_id, counters)| {
                let k = figures::kpis(tz, day, &counters);
                (k.quality_reviews > 0 || k.coaching_marked > 0).then(|| AgentQuality {
                    agent_id: agent_id.clone(),
                    reviews: k.quality_reviews,
                    average_score: k.average_quality_score,
                    coaching_marked: k.coaching_marked,
                })
            })
            .collect();
        let since = now_ms - CHART_HOURS * 3_600_000;
        let service_level_series = self
            .store
            .periods(tenant, "t", Period::Hour, since, now_ms + 1)
            .await?
            .iter()
            .map(|(bucket, counters)| {
                (
                    bucket.start_ms,
                    figures::kpis(tz, *bucket, counters).service_level,
                )
            })
            .collect();
        let queue_rows = queues
            .unwrap_or_default()
            .iter()
            .map(|q| {
                let queue_config = config.queues.iter().find(|c| c.id == q.queue_id);
                let depth = |priority: v1::Priority| {
                    q.depth_by_priority
                        .iter()
                        .filter(|d| d.priority == priority as i32)
                        .map(|d| d.waiting)
                        .sum()
                };
                QueueRow {
                    id: q.queue_id.clone(),
                    name: queue_config.map(|c| c.name.clone()).unwrap_or_default(),
                    waiting: q.waiting,
                    urgent_waiting: q.urgent_waiting,
                    by_priority: [
                        depth(v1::Priority::Urgent),
                        depth(v1::Priority::High),
                        depth(v1::Priority::Normal),
                        depth(v1::Priority::Low),
                    ],
                    oldest_wait_secs: q.oldest_wait_ms / 1000,
                    service_level_secs: queue_config.map_or(0, |c| c.service_level_secs),
                    agents_available: q.agents_available,
                    agents_busy: q.agents_busy,
                    agents_away: q.agents_away,
                    service_level: q.service_level,
                }
            })
            .collect();
        Ok(FloorSnapshot {
            time_zone: tz.name().to_owned(),
            queues: queue_rows,
            queues_unavailable: queues.is_none(),
            agents,
            today,
            quality,
            waiting_series: self.store.waiting_samples(tenant, since).await?,
            service_level_series,
        })
    }
}
