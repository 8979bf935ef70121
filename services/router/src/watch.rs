//! `WatchInteraction`: the status a waiting member follows (state, queue
//! position, estimated wait).
//!
//! Watchers are grouped per tenant on this replica, in one [`Hub`]: it follows
//! the tenant's interaction events on NATS and, when any arrived, re-reads every
//! interaction it watches with its place in the queue — two Redis round trips
//! for all of them, at most every [`REFRESH_EVERY`] — instead of each watcher
//! polling its own contact. The same events feed the wait estimate: the rate at
//! which each queue's contacts were offered recently (see [`OfferRate`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use careline_kit::Shutdown;
use careline_proto::v1;
use careline_routing::{Placed, RoutingStore};
use futures::StreamExt;
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tonic::Status;

use crate::error::RouterError;

/// How often a hub may re-read its interactions while events arrive.
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);
/// A hub re-reads this often even without events, so that an estimate grows
/// while nobody is being offered work.
pub const QUIET_REFRESH_EVERY: Duration = Duration::from_secs(5);
/// Interactions watched at once on one replica, all tenants together.
pub const MAX_WATCHERS: usize = 10_000;
/// Statuses buffered per watcher; a watcher that falls behind skips to the
/// newest status (each status is complete).
const STATUS_BUFFER: usize = 4;
/// Offers remembered per queue and channel for the rate estimate.
const RATE_SAMPLES: usize = 20;
/// Offers older than this no longer count towards the rate.
const RATE_WINDOW: Duration = Duration::from_secs(600);
/// Offers needed before the router estimates a wait.
const MIN_RATE_SAMPLES: usize = 3;

type StatusSender = mpsc::Sender<Result<v1::InteractionStatus, Status>>;

/// Every hub of this replica.
#[derive(Clone)]
pub struct Watches {
    hubs: Arc<Mutex<HashMap<String, Arc<Hub>>>>,
    watching: Arc<AtomicUsize>,
    store: RoutingStore,
    nats: async_nats::Client,
    shutdown: Shutdown,
    tasks: TaskTracker,
}

impl Watches {
    /// Hubs read `store`, follow events on `nats` and run on `tasks`.
    pub fn new(
        store: RoutingStore,
        nats: async_nats::Client,
        shutdown: Shutdown,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            hubs: Arc::default(),
            watching: Arc::default(),
            store,
            nats,
            shutdown,
            tasks,
        }
    }

    /// Starts watching `id` of `tenant`: the first status is in the stream at
    /// once; NotFound when the tenant has no such interaction.
    pub async fn watch(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<mpsc::Receiver<Result<v1::InteractionStatus, Status>>, Status> {
        let placed = self
            .store
            .get_placed(tenant, &[id])
            .await
            .map_err(RouterError::from)?
            .pop()
            .expect("one result per id")
            .map_err(RouterError::from)?;
        if self.watching.fetch_add(1, Ordering::SeqCst) >= MAX_WATCHERS {
            self.watching.fetch_sub(1, Ordering::SeqCst);
            return Err(Status::resource_exhausted(format!(
                "this router replica already serves {MAX_WATCHERS} interaction watchers; retry on \
                 another replica or later"
            )));
        }
        let (tx, rx) = mpsc::channel(STATUS_BUFFER);
        if is_ended(&placed.interaction) {
            // Nothing more will happen to it: its last status, and the end.
            self.watching.fetch_sub(1, Ordering::SeqCst);
            tx.try_send(Ok(Hub::default().status(&placed)))
                .expect("a new channel has room");
            return Ok(rx);
        }
        // Joins the tenant's hub under the hubs lock, so that a hub retiring
        // (see `retire_if_idle`) never takes a new watcher with it.
        let join = |hub: &Hub| {
            let status = hub.status(&placed);
            tx.try_send(Ok(status.clone()))
                .expect("a new channel has room");
            hub.add(Watcher {
                id: id.to_string(),
                tx: tx.clone(),
                last: status,
            });
        };
        if let Some(hub) = self.hubs.lock().expect("hubs lock").get(tenant) {
            join(hub);
            return Ok(rx);
        }
        let subject = format!("careline.{tenant}.interaction.>");
        let events = match self.nats.subscribe(subject).await {
            Ok(events) => events,
            Err(_) => {
                self.watching.fetch_sub(1, Ordering::SeqCst);
                return Err(Status::unavailable(
                    "event bus is unavailable right now; retry",
                ));
            }
        };
        let mut hubs = self.hubs.lock().expect("hubs lock");
        if let Some(hub) = hubs.get(tenant) {
            // Another call started it meanwhile; this subscription is dropped.
            join(hub);
            return Ok(rx);
        }
        let hub = Arc::new(Hub::default());
        join(&hub);
        hubs.insert(tenant.to_string(), hub.clone());
        let watches = self.clone();
        let tenant = tenant.to_string();
        self.tasks
            .spawn(async move { watches.run_hub(tenant, hub, events).await });
        Ok(rx)
    }

    /// Follows the tenant's events and refreshes the watchers until none is
    /// left (or shutdown).
    async fn run_hub(self, tenant: String, hub: Arc<Hub>, mut events: async_nats::Subscriber) {
        let mut ticker = tokio::time::interval(REFRESH_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty = true;
        let mut last_refresh = Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.wait() => break,
                message = events.next() => {
                    let Some(message) = message else { break };
                    match v1::Event::decode(message.payload) {
                        Ok(event) => {
                            hub.rates.lock().expect("rates lock").observe(&event, Instant::now());
                            dirty = true;
                        }
                        Err(error) => tracing::warn!(%error, "undecodable event skipped"),
                    }
                }
                _ = ticker.tick() => {
                    if !dirty && last_refresh.elapsed() < QUIET_REFRESH_EVERY {
                        continue;
                    }
                    if self.retire_if_idle(&tenant, &hub) {
                        break;
                    }
                    dirty = false;
                    last_refresh = Instant::now();
                    if let Err(error) = self.refresh(&tenant, &hub).await {
                        // Watchers keep their last status; the next event retries.
                        tracing::warn!(%error, "interaction watchers not refreshed");
                        dirty = true;
                    }
                }
            }
        }
        self.retire(&tenant, &hub);
        let _ = events.unsubscribe().await;
    }

    /// Removes the hub when it watches nothing (under the hubs lock, so that a
    /// new watcher either finds it before, or starts a new hub after).
    fn retire_if_idle(&self, tenant: &str, hub: &Arc<Hub>) -> bool {
        let mut hubs = self.hubs.lock().expect("hubs lock");
        let mut watchers = hub.watchers.lock().expect("watchers lock");
        let before = watchers.len();
        watchers.retain(|w| !w.tx.is_closed());
        self.watching
            .fetch_sub(before - watchers.len(), Ordering::SeqCst);
        if watchers.is_empty() && hubs.get(tenant).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            hubs.remove(tenant);
            return true;
        }
        false
    }

    /// Ends every watcher of a hub that stops.
    fn retire(&self, tenant: &str, hub: &Arc<Hub>) {
        let mut hubs = self.hubs.lock().expect("hubs lock");
        if hubs.get(tenant).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            hubs.remove(tenant);
        }
        let mut watchers = hub.watchers.lock().expect("watchers lock");
        self.watching.fetch_sub(watchers.len(), Ordering::SeqCst);
        for watcher in watchers.drain(..) {
            let _ = watcher.tx.try_send(Err(Status::unavailable(
                "the router is shutting down or lost its event bus; watch again",
            )));
        }
    }

    /// Re-reads every watched interaction and sends each watcher its status
    /// when it changed; watchers of ended interactions get their last status.
    async fn refresh(&self, tenant: &str, hub: &Hub) -> Result<(), RouterError> {
        let ids: Vec<String> = hub
            .watchers
            .lock()
            .expect("watchers lock")
            .iter()
            .map(|w| w.id.clone())
            .collect();
        let mut unique: Vec<&str> = ids.iter().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        let read = self.store.get_placed(tenant, &unique).await?;
        let statuses: HashMap<&str, Result<(v1::InteractionStatus, bool), Status>> = unique
            .iter()
            .zip(read)
            .map(|(id, placed)| {
                let status = placed
                    .map(|placed| (hub.status(&placed), is_ended(&placed.interaction)))
                    .map_err(|e| Status::from(RouterError::from(e)));
                (*id, status)
            })
            .collect();
        let mut watchers = hub.watchers.lock().expect("watchers lock");
        let before = watchers.len();
        watchers.retain_mut(|watcher| match statuses.get(watcher.id.as_str()) {
            // Added after the read: its first status is already sent.
            None => true,
            Some(Err(status)) => {
                let _ = watcher.tx.try_send(Err(status.clone()));
                false
            }
            Some(Ok((status, ended))) => {
                if same_status(status, &watcher.last) {
                    return !watcher.tx.is_closed();
                }
                match watcher.tx.try_send(Ok(status.clone())) {
                    Ok(()) => {
                        watcher.last = status.clone();
                        !ended
                    }
                    // Behind: it gets a newer status at the next refresh.
                    Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            }
        });
        self.watching
            .fetch_sub(before - watchers.len(), Ordering::SeqCst);
        Ok(())
    }
}

/// The watchers of one tenant on this replica, and what its events taught.
#[derive(Default)]
struct Hub {
    watchers: Mutex<Vec<Watcher>>,
    rates: Mutex<OfferRate>,
}

impl Hub {
    fn add(&self, watcher: Watcher) {
        self.watchers.lock().expect("watchers lock").push(watcher);
    }

    /// The status of `placed` now, with a wait estimate when there is one.
    fn status(&self, placed: &Placed) -> v1::InteractionStatus {
        let interaction = &placed.interaction;
        let estimate = placed.place.and_then(|place| {
            self.rates.lock().expect("rates lock").estimate(
                &interaction.queue_id,
                interaction.channel,
                place.ahead,
                Instant::now(),
            )
        });
        v1::InteractionStatus {
            interaction: Some(interaction.clone()),
            queue_position: placed.place.map_or(0, |p| p.position),
            wait_estimated: estimate.is_some(),
            estimated_wait_secs: estimate.map_or(0, |wait| {
                u32::try_from((wait.as_millis() + 500) / 1000).unwrap_or(u32::MAX)
            }),
            at_ms: chrono::Utc::now().timestamp_millis(),
        }
    }
}

struct Watcher {
    id: String,
    tx: StatusSender,
    last: v1::InteractionStatus,
}

/// Recent offers per queue and channel: the rate at which a queue's contacts
/// leave it for an agent.
///
/// The estimated wait of a queued contact is the contacts ahead of it, plus
/// itself, divided by that rate: `(ahead + 1) * (now - oldest) / (offers - 1)`
/// over the last [`RATE_SAMPLES`] offers of the last [`RATE_WINDOW`]. Measuring
/// to "now" rather than to the newest offer makes the estimate grow while no
/// contact is offered. Offers that are then rejected or time out count too:
/// the estimate is a little short while agents refuse work.
#[derive(Default)]
pub struct OfferRate {
    offers: HashMap<(String, i32), VecDeque<Instant>>,
}

impl OfferRate {
    /// Counts `event` if it is an offer.
    pub fn observe(&mut self, event: &v1::Event, at: Instant) {
        let Some(v1::event::Payload::Interaction(ix)) = &event.payload else {
            return;
        };
        if ix.kind != v1::InteractionEventKind::Offered as i32 {
            return;
        }
        let seen = self
            .offers
            .entry((ix.queue_id.clone(), ix.channel))
            .or_default();
        seen.push_back(at);
        while seen.len() > RATE_SAMPLES {
            seen.pop_front();
        }
    }

    /// The expected wait of a contact with `ahead` contacts before it in
    /// `queue` and `channel`, or None without enough recent offers.
    pub fn estimate(
        &mut self,
        queue: &str,
        channel: i32,
        ahead: u32,
        now: Instant,
    ) -> Option<Duration> {
        let seen = self.offers.get_mut(&(queue.to_string(), channel))?;
        while seen
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > RATE_WINDOW)
        {
            seen.pop_front();
        }
        if seen.len() < MIN_RATE_SAMPLES {
            return None;
        }
        let span = now.saturating_duration_since(*seen.front()?);
        let per_offer = span / u32::try_from(seen.len() - 1).ok()?;
        Some(per_offer * (ahead + 1))
    }
}

fn is_ended(interaction: &v1::Interaction) -> bool {
    use v1::InteractionState::{Abandoned, Resolved, TransferredExternal};
    [Resolved, Abandoned, TransferredExternal]
        .iter()
        .any(|s| *s as i32 == interaction.state)
}

/// Two statuses that differ only in when they were read.
fn same_status(a: &v1::InteractionStatus, b: &v1::InteractionStatus) -> bool {
    a.interaction == b.interaction
        && a.queue_position == b.queue_position
        && a.wait_estimated == b.wait_estimated
        && a.estimated_wait_secs == b.estimated_wait_secs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(queue: &str) -> v1::Event {
        v1::Event {
            payload: Some(v1::event::Payload::Interaction(v1::InteractionEvent {
                kind: v1::InteractionEventKind::Offered as i32,
                queue_id: queue.into(),
                channel: v1::Channel::Chat as i32,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn the_wait_is_the_contacts_ahead_times_the_recent_time_between_offers() {
        let start = Instant::now();
        let mut rate = OfferRate::default();
        let chat = v1::Channel::Chat as i32;
        for i in 0..5 {
            rate.observe(&offered("general"), start + Duration::from_secs(2 * i));
        }
        let now = start + Duration::from_secs(8);
        // One offer every 2 s; 4 ahead + itself.
        assert_eq!(
            rate.estimate("general", chat, 4, now),
            Some(Duration::from_secs(10))
        );
        // Other queues and channels know nothing yet.
        assert_eq!(rate.estimate("billing", chat, 4, now), None);
        assert_eq!(
            rate.estimate("general", v1::Channel::Voice as i32, 4, now),
            None
        );
        // While nobody is offered work, the estimate grows.
        let later = start + Duration::from_secs(16);
        assert_eq!(
            rate.estimate("general", chat, 4, later),
            Some(Duration::from_secs(20))
        );
        // Offers older than the window no longer count.
        assert_eq!(
            rate.estimate("general", chat, 4, start + RATE_WINDOW * 2),
            None
        );
    }

    #[test]
    fn no_wait_is_estimated_from_fewer_than_three_offers() {
        let start = Instant::now();
        let mut rate = OfferRate::default();
        rate.observe(&offered("general"), start);
        rate.observe(&offered("general"), start + Duration::from_secs(1));
        let chat = v1::Channel::Chat as i32;
        assert_eq!(
            rate.estimate("general", chat, 0, start + Duration::from_secs(2)),
            None
        );
    }
}
