//! The tenant's integration as a load balancer's client sees the router
//! replicas: a call that fails for transport reasons is retried on another
//! replica (creates with the same idempotency key), and the helpers the fault
//! scenarios share to load the platform, wait for it to settle and compare
//! its final state with the event log.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use careline_proto::v1;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;
use tonic::Status;

use crate::audit::{Replayed, first};
use crate::client::{self, is_transport_failure};
use crate::seed::RunSeed;

/// Attempts of one call across router replicas before giving up; with the
/// backoff below a call rides out about 9 s of outage.
pub const MAX_ATTEMPTS: u32 = 10;
/// First retry backoff; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(25);
/// Longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Calls in flight at once while reading back every interaction.
pub const READS_IN_FLIGHT: usize = 16;
/// Page size of ListInteractions.
pub const LIST_PAGE_SIZE: u32 = 500;
/// How often [`await_settled`] lists the live interactions: each poll reads
/// every one of them, thousands while a backlog drains.
const SETTLE_POLL: Duration = Duration::from_millis(250);
/// How long [`await_settled`] lets the held work (offered, assigned,
/// pending) stay exactly the same before it counts as stranded: offers time
/// out in 2 s, follow-ups and work sent to one agent end within 10 s in every
/// run.
pub const STALL: Duration = Duration::from_secs(20);
/// How long [`await_settled`] waits for some interaction to end before the
/// work counts as going round without ending.
pub const NO_PROGRESS: Duration = Duration::from_secs(60);
/// How often [`await_settled`] says how far it got.
const SETTLE_REPORT_EVERY: Duration = Duration::from_secs(10);
/// Queues interactions are created on (and transferred to).
pub const QUEUES: [&str; 2] = ["general", "billing"];

/// Router clients of every replica.
#[derive(Clone)]
pub struct Routers {
    clients: Arc<Vec<client::Router>>,
    /// Which replica a call goes to is drawn from the run's seed.
    rng: Arc<Mutex<StdRng>>,
}

impl Routers {
    /// Clients of the replicas at `addrs`, authenticated with `api_key`.
    pub fn new(addrs: &[SocketAddr], api_key: &str, seed: u64) -> Routers {
        Routers {
            clients: Arc::new(
                addrs
                    .iter()
                    .map(|addr| client::router(*addr, api_key))
                    .collect(),
            ),
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        }
    }

    fn pick(&self, avoid: Option<usize>) -> usize {
        let n = self.clients.len();
        let mut rng = self.rng.lock().expect("router rng");
        let index = rng.random_range(0..n);
        match avoid {
            Some(last) if last == index && n > 1 => (index + 1 + rng.random_range(0..n - 1)) % n,
            _ => index,
        }
    }

    /// Runs `call` on a random replica, retrying transport failures on
    /// another one with backoff; `retries` counts the retries.
    pub async fn call<T, F, Fut>(&self, retries: &AtomicU64, mut call: F) -> Result<T, Status>
    where
        F: FnMut(client::Router) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut last: Option<usize> = None;
        let mut failure = Status::unavailable("no attempt made");
        for attempt in 0..MAX_ATTEMPTS {
            let index = self.pick(last);
            match call(self.clients[index].clone()).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if is_transport_failure(&status) => {
                    retries.fetch_add(1, Ordering::Relaxed);
                    last = Some(index);
                    failure = status;
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(1 << attempt.min(10))
                        .min(MAX_BACKOFF);
                    tokio::time::sleep(backoff).await;
                }
                Err(status) => return Err(status),
            }
        }
        Err(failure)
    }
}

/// Counts of a batch of creates, shared with whoever watches progress.
#[derive(Default)]
pub struct CreateTally {
    /// Creates acknowledged so far.
    pub created: AtomicUsize,
    /// Transport failures retried on another replica.
    pub retries: AtomicU64,
    /// Acknowledgements that were replays of an earlier attempt.
    pub replayed: AtomicU64,
}

/// One random interaction (channel, queue, language drawn from `rng`).
fn new_request(index: usize, run: &str, rng: &mut StdRng) -> v1::CreateInteractionRequest {
    let channel =
        [v1::Channel::Voice, v1::Channel::Chat, v1::Channel::Email][rng.random_range(0..3)];
    let queue = QUEUES[rng.random_range(0..QUEUES.len())];
    let language = [v1::Language::En, v1::Language::Es][rng.random_range(0..2)];
    v1::CreateInteractionRequest {
        channel: channel as i32,
        queue_id: queue.into(),
        language: language as i32,
        member_ref: format!("member-{index:05}"),
        idempotency_key: format!("e2e-{run}-{index}"),
        context: Some(v1::InteractionContext {
            reason: "claim status".into(),
            summary: format!("load test contact {index}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates interactions `indexes` ([`create_interactions`]) in a task of
/// its own, so the run can inject faults meanwhile; `batch` keeps keys of
/// different runs apart.
pub fn spawn_creates(
    routers: &Routers,
    creates: &Arc<CreateTally>,
    indexes: Range<usize>,
    in_flight: usize,
    batch: &str,
    run: &RunSeed,
) -> JoinHandle<HashMap<String, String>> {
    let (routers, creates, run, batch) = (
        routers.clone(),
        creates.clone(),
        run.clone(),
        batch.to_string(),
    );
    tokio::spawn(async move {
        create_interactions(
            &routers,
            &creates,
            indexes,
            in_flight,
            (&batch, run.seed),
            &run.context,
        )
        .await
    })
}

/// Creates interactions `indexes` through random routers, `in_flight` at
/// once; returns idempotency key -> interaction id. `run` keeps keys of
/// different runs apart; `seed` draws the requests. Panics (with `context`)
/// when a create fails on every replica: the client was never answered.
pub async fn create_interactions(
    routers: &Routers,
    tally: &CreateTally,
    indexes: Range<usize>,
    in_flight: usize,
    (run, seed): (&str, u64),
    context: &str,
) -> HashMap<String, String> {
    let mut rng = StdRng::seed_from_u64(seed ^ indexes.start as u64);
    let requests: Vec<_> = indexes
        .map(|index| (index, new_request(index, run, &mut rng)))
        .collect();
    futures::stream::iter(requests)
        .map(|(index, request)| async move {
            let response = routers
                .call(&tally.retries, |mut router| {
                    let request = request.clone();
                    async move { router.create_interaction(request).await }
                })
                .await
                .unwrap_or_else(|status| {
                    panic!("CreateInteraction {index} failed on every router: {status:?}{context}")
                });
            if response.replayed {
                tally.replayed.fetch_add(1, Ordering::Relaxed);
            }
            tally.created.fetch_add(1, Ordering::Relaxed);
            let id = response.interaction.expect("created interaction").id;
            (request.idempotency_key, id)
        })
        .buffer_unordered(in_flight)
        .collect()
        .await
}

/// Waits until `tally` counts `at_least` creates; panics if `creator` (the
/// task creating them) ends first, so a fault point is never silently skipped.
pub async fn wait_created<T>(
    tally: &CreateTally,
    at_least: usize,
    creator: &tokio::task::JoinHandle<T>,
) {
    while tally.created.load(Ordering::Relaxed) < at_least {
        assert!(
            !creator.is_finished(),
            "creation ended before {at_least} interactions were created"
        );
        tokio::time::sleep(careline_testkit::POLL_INTERVAL).await;
    }
}

/// Every live interaction of the tenant (queued, offered, assigned, pending).
pub async fn live_interactions(
    routers: &Routers,
    retries: &AtomicU64,
) -> Result<Vec<v1::Interaction>, Status> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = routers
            .call(retries, |mut router| {
                let request = v1::ListInteractionsRequest {
                    page: Some(v1::PageRequest {
                        page_size: LIST_PAGE_SIZE,
                        page_token: page_token.clone(),
                    }),
                    ..Default::default()
                };
                async move { router.list_interactions(request).await }
            })
            .await?;
        all.extend(page.interactions);
        page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            return Ok(all);
        }
    }
}

/// Live interactions counted by state name.
pub fn state_counts(live: &[v1::Interaction]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for ix in live {
        let state = v1::InteractionState::try_from(ix.state)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_else(|_| ix.state.to_string());
        *counts.entry(state).or_default() += 1;
    }
    counts
}

/// Waits until nothing is offered, assigned or pending (only work no agent
/// takes waits); returns how many interactions stay queued. Gives up, with
/// the live interactions that are not queued, when that set has not changed
/// for [`STALL`] (work stranded: a backlog keeps changing it) or when no
/// interaction ended for [`NO_PROGRESS`] (work going round without ending).
/// A backlog of thousands takes as long as the agents need to drain it: there
/// is no limit on the whole wait, only on the lack of progress. Says every
/// [`SETTLE_REPORT_EVERY`] how far it got.
pub async fn await_settled(
    routers: &Routers,
    context: &str,
) -> Result<usize, Vec<v1::Interaction>> {
    let retries = AtomicU64::new(0);
    let started = Instant::now();
    let mut last_seen: Vec<(String, i32)> = Vec::new();
    let mut unchanged_since = started;
    let mut fewest_open = usize::MAX;
    let mut progress_at = started;
    let mut reported = started;
    loop {
        let live = live_interactions(routers, &retries)
            .await
            .unwrap_or_else(|status| panic!("ListInteractions: {status:?}{context}"));
        let unsettled: Vec<v1::Interaction> = live
            .iter()
            .filter(|ix| ix.state != v1::InteractionState::Queued as i32)
            .cloned()
            .collect();
        if unsettled.is_empty() {
            return Ok(live.len());
        }
        let open = live
            .iter()
            .filter(|ix| ix.state != v1::InteractionState::Resolved as i32)
            .count();
        if open < fewest_open {
            fewest_open = open;
            progress_at = Instant::now();
        }
        if reported.elapsed() >= SETTLE_REPORT_EVERY {
            reported = Instant::now();
            println!(
                "settling for {:.0}s: {open} interactions open, by state {:?}",
                started.elapsed().as_secs_f64(),
                state_counts(&live)
            );
        }
        let mut seen: Vec<(String, i32)> = unsettled
            .iter()
            .map(|ix| (ix.id.clone(), ix.state))
            .collect();
        seen.sort();
        if seen != last_seen {
            last_seen = seen;
            unchanged_since = Instant::now();
        }
        if unchanged_since.elapsed() >= STALL || progress_at.elapsed() >= NO_PROGRESS {
            return Err(unsettled);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// Every interaction ends resolved or queued, as the log says, and the
/// router agrees (GetInteraction of each id in `ids`).
pub async fn assert_final_states(
    routers: &Routers,
    ids: impl IntoIterator<Item = String>,
    last: &HashMap<String, Replayed>,
    context: &str,
) {
    let finals: Vec<(String, Replayed, Result<v1::Interaction, Status>)> =
        futures::stream::iter(ids)
            .map(|id| {
                let replayed = last.get(&id).cloned();
                async move {
                    let retries = AtomicU64::new(0);
                    let fetched = routers
                        .call(&retries, |mut router| {
                            let request = v1::GetInteractionRequest {
                                interaction_id: id.clone(),
                            };
                            async move { router.get_interaction(request).await }
                        })
                        .await;
                    (
                        id,
                        replayed.unwrap_or(Replayed::Closed("never seen".into())),
                        fetched,
                    )
                }
            })
            .buffer_unordered(READS_IN_FLIGHT)
            .collect()
            .await;
    let mismatched: Vec<_> = finals
        .iter()
        .filter(|(_, replayed, fetched)| {
            let state = fetched.as_ref().map(|ix| ix.state).unwrap_or(-1);
            match replayed {
                Replayed::Resolved => state != v1::InteractionState::Resolved as i32,
                Replayed::Queued => state != v1::InteractionState::Queued as i32,
                _ => true,
            }
        })
        .collect();
    assert!(
        mismatched.is_empty(),
        "interactions not ending resolved or queued as the log says: {}{context}",
        first(&mismatched)
    );
}
