//! `WatchQueueStats`: one stats reader per tenant and queue filter on this
//! replica, shared by every watcher of it, instead of one reader each.
//!
//! A feed reads the stats every `stats_interval` while it has watchers and
//! publishes them when they changed; a watcher gets the latest at once, then
//! each change. The feed ends with its last watcher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use careline_bus::TenantDirectory;
use careline_kit::Shutdown;
use careline_proto::v1;
use careline_routing::RoutingStore;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tonic::Status;

use crate::error::RouterError;

/// One read of a feed: the stats, or why they could not be read.
pub type StatsItem = Result<v1::GetQueueStatsResponse, Status>;

/// A tenant and the queue it is narrowed to (None: every queue).
type FeedKey = (String, Option<String>);

/// The feeds of this replica.
#[derive(Clone)]
pub struct StatsFeeds {
    feeds: Arc<Mutex<HashMap<FeedKey, watch::Sender<Option<StatsItem>>>>>,
    store: RoutingStore,
    tenants: Arc<TenantDirectory>,
    shutdown: Shutdown,
    tasks: TaskTracker,
    interval: Duration,
}

impl StatsFeeds {
    /// Feeds read `store` every `interval` and run on `tasks`.
    pub fn new(
        store: RoutingStore,
        tenants: Arc<TenantDirectory>,
        shutdown: Shutdown,
        tasks: TaskTracker,
        interval: Duration,
    ) -> Self {
        Self {
            feeds: Arc::default(),
            store,
            tenants,
            shutdown,
            tasks,
            interval,
        }
    }

    /// The stats of `tenant` (narrowed to `queue`), as they change; None
    /// until the feed's first read.
    pub fn subscribe(
        &self,
        tenant: &str,
        queue: Option<String>,
    ) -> watch::Receiver<Option<StatsItem>> {
        let key = (tenant.to_string(), queue);
        let mut feeds = self.feeds.lock().expect("feeds lock");
        if let Some(feed) = feeds.get(&key) {
            return feed.subscribe();
        }
        let (feed, updates) = watch::channel(None);
        feeds.insert(key.clone(), feed.clone());
        let feeds = self.clone();
        self.tasks.spawn(async move { feeds.run(key, feed).await });
        updates
    }

    async fn run(self, key: FeedKey, feed: watch::Sender<Option<StatsItem>>) {
        let mut ticker = tokio::time::interval(self.interval);
        let mut last: Option<Vec<v1::QueueStats>> = None;
        loop {
            tokio::select! {
                _ = self.shutdown.wait() => break,
                _ = ticker.tick() => {}
            }
            // Under the lock: a new watcher either finds this feed or starts another.
            {
                let mut feeds = self.feeds.lock().expect("feeds lock");
                if feed.receiver_count() == 0 {
                    feeds.remove(&key);
                    return;
                }
            }
            // Read with the tenant's configuration now, so new queues show up.
            let Some(config) = self.tenants.get(&key.0) else {
                feed.send_replace(Some(Err(RouterError::UnknownTenant(key.0.clone()).into())));
                continue;
            };
            let item = self
                .store
                .queue_stats(&config, key.1.as_deref())
                .await
                .map_err(|e| Status::from(RouterError::from(e)));
            match &item {
                Ok(stats) if last.as_ref() == Some(&stats.queues) => continue,
                Ok(stats) => last = Some(stats.queues.clone()),
                Err(_) => last = None,
            }
            feed.send_replace(Some(item));
        }
        self.feeds.lock().expect("feeds lock").remove(&key);
    }
}
