//! Replicas die mid-load: three routers and two presence replicas serve 50
//! agents answering at random while 5,000 interactions arrive; one router and
//! later one presence replica are killed without a drain. The event log must
//! then show every interaction created once, never offered or assigned twice
//! at once, no agent over capacity, and no event lost or doubled.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use careline_domain::Language;
use careline_domain::tenant::{PerChannel, PerChannelOverride, TenantConfig};
use careline_e2e::client::{self, is_transport_failure};
use careline_e2e::events::{is_routing_event, read_tenant_events};
use careline_e2e::tenant::{self, API_KEY, TENANT};
use careline_e2e::{Platform, Replica};
use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind as EventKind;
use careline_proto::v1::agent_session_request::Kind as RequestKind;
use careline_proto::v1::presence_client::PresenceClient;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Code, Status};

const AGENTS: usize = 50;
const INTERACTIONS: usize = 5_000;
/// Creates in flight at once.
const CREATES_IN_FLIGHT: usize = 16;
/// A router is killed once this many interactions were created...
const KILL_ROUTER_AFTER: usize = INTERACTIONS / 3;
/// ... and a presence replica once this many.
const KILL_PRESENCE_AFTER: usize = INTERACTIONS * 2 / 3;
const HEARTBEAT_TTL_SECS: u32 = 10;
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
const OFFER_TIMEOUT_SECS: u32 = 2;
/// Capacity of every agent per channel.
const CAPACITY: PerChannel = PerChannel {
    voice: 1,
    chat: 3,
    email: 5,
};
/// Percent of offers accepted, then rejected; the rest are ignored.
const ACCEPT_PERCENT: u32 = 70;
const REJECT_PERCENT: u32 = 20;
/// How long an agent works on an accepted interaction before resolving it.
const HANDLE_MS: std::ops::Range<u64> = 20..200;
/// Attempts of one call across router replicas before giving up.
const MAX_ATTEMPTS: u32 = 8;
/// How long everything may take to settle once creation stops.
const SETTLE_DEADLINE: Duration = Duration::from_secs(120);
/// The whole test, start-up included.
const TEST_DEADLINE: Duration = Duration::from_secs(240);

fn tenant_under_load() -> TenantConfig {
    let mut config = tenant::demo();
    config.routing.offer_timeout_secs = PerChannel {
        voice: OFFER_TIMEOUT_SECS,
        chat: OFFER_TIMEOUT_SECS,
        email: OFFER_TIMEOUT_SECS,
    };
    config.routing.wrap_up_secs = 0;
    config.routing.heartbeat_ttl_secs = HEARTBEAT_TTL_SECS;
    config.agents = tenant::agents(
        AGENTS,
        &[("member_services", 5), ("billing", 5), ("clinical", 7)],
        &[Language::En, Language::Es],
        PerChannelOverride {
            voice: Some(CAPACITY.voice),
            chat: Some(CAPACITY.chat),
            email: Some(CAPACITY.email),
        },
    );
    config
}

/// What the clients did, counted as they went.
#[derive(Default)]
struct Tally {
    created: AtomicUsize,
    create_retries: AtomicU64,
    replayed: AtomicU64,
    offers_seen: AtomicU64,
    /// Offers that reached the desk after their deadline.
    offers_late: AtomicU64,
    /// Longest time from an offer being made to its arrival at the desk.
    offer_lag_max_ms: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    ignored: AtomicU64,
    resolved: AtomicU64,
    resolve_retries: AtomicU64,
    resolve_refused: AtomicU64,
    notices: AtomicU64,
    logged_in: AtomicUsize,
    reconnects: AtomicU64,
    /// Calls that failed for a reason other than a dying replica.
    failures: std::sync::Mutex<Vec<String>>,
}

fn count(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Router clients of every replica; a call that fails for transport reasons
/// is retried on another replica, as a load balancer's client would.
#[derive(Clone)]
struct Routers {
    clients: Arc<Vec<client::Router>>,
}

impl Routers {
    fn new(addrs: &[SocketAddr]) -> Routers {
        Routers {
            clients: Arc::new(
                addrs
                    .iter()
                    .map(|addr| client::router(*addr, API_KEY))
                    .collect(),
            ),
        }
    }

    async fn call<T, F, Fut>(&self, retries: &AtomicU64, mut call: F) -> Result<T, Status>
    where
        F: FnMut(client::Router) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut last: Option<usize> = None;
        let mut failure = Status::unavailable("no attempt made");
        for attempt in 0..MAX_ATTEMPTS {
            let n = self.clients.len();
            let mut index = rand::random_range(0..n);
            if Some(index) == last && n > 1 {
                index = (index + 1 + rand::random_range(0..n - 1)) % n;
            }
            match call(self.clients[index].clone()).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if is_transport_failure(&status) => {
                    bump(retries);
                    last = Some(index);
                    failure = status;
                    let backoff = Duration::from_millis(25 << attempt.min(5));
                    tokio::time::sleep(backoff).await;
                }
                Err(status) => return Err(status),
            }
        }
        Err(failure)
    }
}

fn new_request(index: usize, run: &str) -> v1::CreateInteractionRequest {
    let channel =
        [v1::Channel::Voice, v1::Channel::Chat, v1::Channel::Email][rand::random_range(0..3)];
    let queue = ["general", "billing"][rand::random_range(0..2)];
    let language = [v1::Language::En, v1::Language::Es][rand::random_range(0..2)];
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

/// Creates every interaction through random routers; returns idempotency
/// key -> interaction id.
async fn create_all(routers: Routers, tally: Arc<Tally>) -> HashMap<String, String> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    futures::stream::iter(0..INTERACTIONS)
        .map(|index| {
            let (routers, tally, run) = (routers.clone(), tally.clone(), run.clone());
            async move {
                let request = new_request(index, &run);
                let response = routers
                    .call(&tally.create_retries, |mut router| {
                        let request = request.clone();
                        async move { router.create_interaction(request).await }
                    })
                    .await
                    .unwrap_or_else(|status| {
                        panic!("CreateInteraction {index} failed on every router: {status:?}")
                    });
                if response.replayed {
                    bump(&tally.replayed);
                }
                tally.created.fetch_add(1, Ordering::Relaxed);
                let id = response.interaction.expect("created interaction").id;
                (request.idempotency_key, id)
            }
        })
        .buffer_unordered(CREATES_IN_FLIGHT)
        .collect()
        .await
}

/// One agent's desktop: logs in on a presence replica, answers offers at
/// random, resolves accepted work through a router, and reconnects to the
/// other replica when its stream breaks.
struct Desk {
    agent_id: String,
    presence: Vec<SocketAddr>,
    routers: Routers,
    tally: Arc<Tally>,
    work: TaskTracker,
    stop: CancellationToken,
    /// Interactions whose resolution is under way, so a re-sent assignment
    /// (after a reconnect) is not resolved twice.
    resolving: HashSet<String>,
    started_once: bool,
}

impl Desk {
    async fn run(mut self, home: usize) {
        let mut replica = home;
        loop {
            let ended = self.session(self.presence[replica]).await;
            if self.stop.is_cancelled() {
                return;
            }
            bump(&self.tally.reconnects);
            report_reconnect(&self.agent_id, &ended);
            replica = (replica + 1) % self.presence.len();
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    async fn session(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(request(RequestKind::Login(v1::Login {
            tenants: vec![v1::TenantLogin {
                tenant_id: TENANT.into(),
                agent_id: self.agent_id.clone(),
                agent_key: tenant::agent_key(&self.agent_id),
            }],
            initial_state: v1::AgentState::Available as i32,
        })))
        .await?;
        let mut presence = PresenceClient::new(client::stream_channel(addr));
        let mut events = presence
            .open_agent_session(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            let event = tokio::select! {
                _ = self.stop.cancelled() => return Ok(()),
                _ = beat.tick() => {
                    tx.send(request(RequestKind::Heartbeat(v1::Heartbeat {}))).await?;
                    continue;
                }
                event = events.message() => event?,
            };
            let Some(event) = event else {
                anyhow::bail!("the session stream ended");
            };
            if let Some(reply) = self.handle(event.kind) {
                tx.send(request(reply)).await?;
            }
        }
    }

    /// Reacts to one session event; returns what to send back, if anything.
    fn handle(&mut self, event: Option<EventKind>) -> Option<RequestKind> {
        match event? {
            EventKind::Started(_) => {
                if !self.started_once {
                    self.started_once = true;
                    self.tally.logged_in.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            EventKind::Offer(offer) => {
                bump(&self.tally.offers_seen);
                let made_ms = offer.deadline_ms - i64::from(OFFER_TIMEOUT_SECS) * 1000;
                let lag_ms = u64::try_from(now_ms() - made_ms).unwrap_or(0);
                self.tally
                    .offer_lag_max_ms
                    .fetch_max(lag_ms, Ordering::Relaxed);
                if now_ms() > offer.deadline_ms {
                    bump(&self.tally.offers_late);
                }
                let answer = v1::OfferAnswer {
                    tenant_id: TENANT.into(),
                    offer_id: offer.offer_id,
                };
                let roll = rand::random_range(0..100);
                if roll < ACCEPT_PERCENT {
                    bump(&self.tally.accepted);
                    Some(RequestKind::Accept(answer))
                } else if roll < ACCEPT_PERCENT + REJECT_PERCENT {
                    bump(&self.tally.rejected);
                    Some(RequestKind::Reject(answer))
                } else {
                    bump(&self.tally.ignored);
                    None
                }
            }
            EventKind::Assigned(assigned) => {
                let id = assigned.interaction?.id;
                if self.resolving.insert(id.clone()) {
                    self.work.spawn(resolve(
                        self.routers.clone(),
                        self.tally.clone(),
                        self.agent_id.clone(),
                        id,
                    ));
                }
                None
            }
            EventKind::StateChanged(changed)
                if changed.state == v1::AgentState::Away as i32 && changed.reason == "missed" =>
            {
                Some(RequestKind::SetState(v1::SetState {
                    tenant_id: TENANT.into(),
                    state: v1::AgentState::Available as i32,
                    away_reason: String::new(),
                }))
            }
            EventKind::Error(_) => {
                bump(&self.tally.notices);
                None
            }
            EventKind::StateChanged(_) | EventKind::Revoked(_) => None,
        }
    }
}

fn report_reconnect(agent: &str, ended: &anyhow::Result<()>) {
    if let Err(error) = ended {
        eprintln!("{agent}: session ended ({error}); reconnecting");
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn request(kind: RequestKind) -> v1::AgentSessionRequest {
    v1::AgentSessionRequest { kind: Some(kind) }
}

async fn resolve(routers: Routers, tally: Arc<Tally>, agent_id: String, interaction_id: String) {
    let handle_ms = rand::random_range(HANDLE_MS);
    tokio::time::sleep(Duration::from_millis(handle_ms)).await;
    let resolved = routers
        .call(&tally.resolve_retries, |mut router| {
            let request = v1::ResolveRequest {
                interaction_id: interaction_id.clone(),
                agent_id: agent_id.clone(),
                disposition: "answered".into(),
                ..Default::default()
            };
            async move { router.resolve(request).await }
        })
        .await;
    match resolved {
        Ok(_) => bump(&tally.resolved),
        // A retried resolve whose first attempt went through, or a held
        // assignment re-sent after a reconnect.
        Err(status) if status.code() == Code::FailedPrecondition => bump(&tally.resolve_refused),
        Err(status) => tally.failures.lock().unwrap().push(format!(
            "Resolve {interaction_id} by {agent_id}: {status:?}"
        )),
    }
}

/// Every live interaction of the tenant (queued, offered, assigned, pending).
async fn live_interactions(
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
                        page_size: 500,
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

fn state_counts(live: &[v1::Interaction]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for ix in live {
        let state = v1::InteractionState::try_from(ix.state)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_else(|_| ix.state.to_string());
        *counts.entry(state).or_default() += 1;
    }
    counts
}

async fn wait_until(
    what: &str,
    mut done: impl FnMut() -> bool,
    creator: &tokio::task::JoinHandle<HashMap<String, String>>,
) {
    while !done() {
        assert!(!creator.is_finished(), "creation ended before {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kill(replica: &mut Replica, started: Instant) {
    replica.kill();
    println!(
        "killed {} ({}) at {:.1}s",
        replica.name,
        replica.addr,
        started.elapsed().as_secs_f64()
    );
}

/// Where one interaction stands while the log is replayed.
#[derive(Debug, Clone, PartialEq)]
enum Replayed {
    Queued,
    Offered {
        agent: String,
        offer: String,
    },
    /// Offer rejected, timed out or revoked; a requeue follows.
    Withdrawn,
    Assigned {
        agent: String,
    },
    Resolved,
    Closed(String),
}

/// What replaying the event log found.
#[derive(Default)]
struct Audit {
    sequence_problems: Vec<String>,
    created: Vec<String>,
    transition_problems: Vec<String>,
    capacity_problems: Vec<String>,
    last: HashMap<String, Replayed>,
    kinds: HashMap<&'static str, u64>,
}

fn audit(events: &[v1::Event]) -> Audit {
    use v1::AgentEventKind as A;
    use v1::InteractionEventKind as K;
    let mut audit = Audit::default();
    for (index, event) in events.iter().enumerate() {
        let expected = index as u64 + 1;
        if event.sequence != expected {
            audit.sequence_problems.push(format!(
                "position {index}: sequence {} where {expected} was due (event {})",
                event.sequence, event.event_id
            ));
            if audit.sequence_problems.len() > 20 {
                break;
            }
        }
    }
    let mut held: HashMap<(String, i32), i64> = HashMap::new();
    let capacity = |channel: i32| match v1::Channel::try_from(channel) {
        Ok(v1::Channel::Voice) => i64::from(CAPACITY.voice),
        Ok(v1::Channel::Chat) => i64::from(CAPACITY.chat),
        Ok(v1::Channel::Email) => i64::from(CAPACITY.email),
        _ => 0,
    };
    for event in events {
        match &event.payload {
            Some(v1::event::Payload::Interaction(ix)) => {
                let kind = K::try_from(ix.kind).unwrap_or(K::Unspecified);
                *audit.kinds.entry(kind.as_str_name()).or_default() += 1;
                let id = ix.interaction_id.clone();
                let before = audit.last.get(&id).cloned();
                let mut problem = |what: String| {
                    audit.transition_problems.push(format!(
                        "seq {} {}: {} ({what}; was {before:?})",
                        event.sequence,
                        id,
                        kind.as_str_name()
                    ))
                };
                let after = match kind {
                    K::Created => {
                        audit.created.push(id.clone());
                        if before.is_some() {
                            problem("created twice".into());
                        }
                        Replayed::Queued
                    }
                    K::Offered => {
                        if before != Some(Replayed::Queued) {
                            problem("offered while not queued".into());
                        }
                        let key = (ix.agent_id.clone(), ix.channel);
                        let now = held.entry(key).or_default();
                        *now += 1;
                        if *now > capacity(ix.channel) {
                            audit.capacity_problems.push(format!(
                                "seq {}: {} holds {} on channel {} (capacity {})",
                                event.sequence,
                                ix.agent_id,
                                now,
                                ix.channel,
                                capacity(ix.channel)
                            ));
                        }
                        Replayed::Offered {
                            agent: ix.agent_id.clone(),
                            offer: ix.offer_id.clone(),
                        }
                    }
                    K::Assigned => {
                        match &before {
                            Some(Replayed::Offered { agent, offer })
                                if *agent == ix.agent_id && *offer == ix.offer_id => {}
                            _ => problem(format!(
                                "assigned to {} (offer {}) without its pending offer",
                                ix.agent_id, ix.offer_id
                            )),
                        }
                        Replayed::Assigned {
                            agent: ix.agent_id.clone(),
                        }
                    }
                    K::OfferRejected | K::OfferTimedOut | K::OfferRevoked => {
                        match &before {
                            Some(Replayed::Offered { agent, offer })
                                if *agent == ix.agent_id && *offer == ix.offer_id => {}
                            _ => problem(format!(
                                "offer {} of {} withdrawn but not pending",
                                ix.offer_id, ix.agent_id
                            )),
                        }
                        Replayed::Withdrawn
                    }
                    K::Requeued => {
                        if !matches!(
                            before,
                            Some(Replayed::Withdrawn | Replayed::Assigned { .. })
                        ) {
                            problem("requeued while neither withdrawn nor assigned".into());
                        }
                        Replayed::Queued
                    }
                    K::Overflowed => {
                        if before != Some(Replayed::Queued) {
                            problem("overflowed while not queued".into());
                        }
                        Replayed::Queued
                    }
                    K::Resolved => {
                        match &before {
                            Some(Replayed::Assigned { agent }) if *agent == ix.agent_id => {}
                            _ => problem(format!("resolved by {} without holding it", ix.agent_id)),
                        }
                        Replayed::Resolved
                    }
                    other => {
                        problem(format!("unexpected kind {other:?} in this scenario"));
                        Replayed::Closed(other.as_str_name().to_string())
                    }
                };
                audit.last.insert(id, after);
            }
            Some(v1::event::Payload::Agent(agent)) => {
                let kind = A::try_from(agent.kind).unwrap_or(A::Unspecified);
                *audit.kinds.entry(kind.as_str_name()).or_default() += 1;
                if kind == A::CapacityReleased {
                    let now = held
                        .entry((agent.agent_id.clone(), agent.channel))
                        .or_default();
                    *now -= 1;
                    if *now < 0 {
                        audit.capacity_problems.push(format!(
                            "seq {}: {} released more capacity than it held on channel {} ({now})",
                            event.sequence, agent.agent_id, agent.channel
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    audit
}

fn first<T: std::fmt::Debug>(problems: &[T]) -> String {
    let shown: Vec<String> = problems
        .iter()
        .take(20)
        .map(|p| format!("  {p:?}"))
        .collect();
    format!(
        "{} problem(s), first ones:\n{}",
        problems.len(),
        shown.join("\n")
    )
}

/// Reads the tenant's whole routing log once the relay has caught up: the
/// events numbered 1..=sequence with the sequence unchanged meanwhile.
async fn complete_log(platform: &Platform) -> Vec<v1::Event> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let before = platform.routing_sequence(TENANT).await.expect("sequence");
        let mut events: Vec<v1::Event> = read_tenant_events(&platform.jetstream, TENANT)
            .await
            .expect("the tenant's events")
            .into_iter()
            .filter(is_routing_event)
            .collect();
        let after = platform.routing_sequence(TENANT).await.expect("sequence");
        let max = events.iter().map(|e| e.sequence).max().unwrap_or(0);
        if before == after && max >= after {
            events.sort_by_key(|e| e.sequence);
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "the event log never caught up: routing sequence {after}, {} events stored, highest {max}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_interaction_is_lost_or_double_assigned_when_a_replica_dies() {
    tokio::time::timeout(TEST_DEADLINE, scenario())
        .await
        .unwrap_or_else(|_| panic!("the scenario took longer than {TEST_DEADLINE:?}"));
}

async fn scenario() {
    let started = Instant::now();
    let mut platform = Platform::builder()
        .tenant(tenant_under_load())
        .routers(3)
        .presence(2)
        .start()
        .await
        .expect("platform starts");
    let routers = Routers::new(&platform.router_addrs());
    let tally = Arc::new(Tally::default());
    let stop = CancellationToken::new();
    let work = TaskTracker::new();

    let mut desks = JoinSet::new();
    for agent in &platform.tenant.agents {
        let home = desks.len() % platform.presence.len();
        let desk = Desk {
            agent_id: agent.id.clone(),
            presence: platform.presence_addrs(),
            routers: routers.clone(),
            tally: tally.clone(),
            work: work.clone(),
            stop: stop.clone(),
            resolving: HashSet::new(),
            started_once: false,
        };
        desks.spawn(desk.run(home));
    }
    careline_testkit::assert_eventually!(
        within: Duration::from_secs(30),
        tally.logged_in.load(Ordering::Relaxed) == AGENTS,
        "all {AGENTS} agents logged in ({} so far)", tally.logged_in.load(Ordering::Relaxed)
    );
    println!(
        "{AGENTS} agents logged in at {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let creating = Instant::now();
    let creator = tokio::spawn(create_all(routers.clone(), tally.clone()));
    wait_until(
        "the router kill",
        || tally.created.load(Ordering::Relaxed) >= KILL_ROUTER_AFTER,
        &creator,
    )
    .await;
    kill(&mut platform.routers[2], started);
    wait_until(
        "the presence kill",
        || tally.created.load(Ordering::Relaxed) >= KILL_PRESENCE_AFTER,
        &creator,
    )
    .await;
    kill(&mut platform.presence[1], started);
    let created = creator.await.expect("every interaction created");
    let creation_secs = creating.elapsed().as_secs_f64();
    println!("{INTERACTIONS} interactions created in {creation_secs:.1}s");

    // Settle: nothing offered, assigned or pending; only work no agent can take waits.
    let settle_retries = AtomicU64::new(0);
    let settle_deadline = Instant::now() + SETTLE_DEADLINE;
    loop {
        let live = live_interactions(&routers, &settle_retries)
            .await
            .expect("ListInteractions");
        if live
            .iter()
            .all(|ix| ix.state == v1::InteractionState::Queued as i32)
        {
            println!(
                "settled at {:.1}s with {} queued",
                started.elapsed().as_secs_f64(),
                live.len()
            );
            break;
        }
        assert!(
            Instant::now() < settle_deadline,
            "not settled after {SETTLE_DEADLINE:?}: live interactions by state {:?}",
            state_counts(&live)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.cancel();
    while let Some(joined) = desks.join_next().await {
        joined.expect("an agent desk panicked");
    }
    work.close();
    work.wait().await;

    let failures = tally.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "client calls failed: {}",
        first(&failures)
    );

    let events = complete_log(&platform).await;
    let audit = audit(&events);
    let kind = |name: &str| audit.kinds.get(name).copied().unwrap_or(0);
    println!(
        "e2e replicas: {INTERACTIONS} interactions via 3 routers (create retries {}, replayed {}), \
         {AGENTS} agents on 2 presence (reconnects {}); offers seen {} (late {}, max lag {} ms) accepted {} rejected {} ignored {}; \
         resolved {} (refused {}, resolve retries {}), notices {}; events {}: offered {} assigned {} \
         rejected {} timed_out {} revoked {} requeued {} resolved {} capacity_released {}; \
         creation {creation_secs:.1}s, elapsed {:.1}s",
        count(&tally.create_retries),
        count(&tally.replayed),
        count(&tally.reconnects),
        count(&tally.offers_seen),
        count(&tally.offers_late),
        count(&tally.offer_lag_max_ms),
        count(&tally.accepted),
        count(&tally.rejected),
        count(&tally.ignored),
        count(&tally.resolved),
        count(&tally.resolve_refused),
        count(&tally.resolve_retries),
        count(&tally.notices),
        events.len(),
        kind("INTERACTION_EVENT_KIND_OFFERED"),
        kind("INTERACTION_EVENT_KIND_ASSIGNED"),
        kind("INTERACTION_EVENT_KIND_OFFER_REJECTED"),
        kind("INTERACTION_EVENT_KIND_OFFER_TIMED_OUT"),
        kind("INTERACTION_EVENT_KIND_OFFER_REVOKED"),
        kind("INTERACTION_EVENT_KIND_REQUEUED"),
        kind("INTERACTION_EVENT_KIND_RESOLVED"),
        kind("AGENT_EVENT_KIND_CAPACITY_RELEASED"),
        started.elapsed().as_secs_f64(),
    );

    // 1. No event lost or doubled across the relay failover.
    let sequence = platform.routing_sequence(TENANT).await.expect("sequence");
    assert!(
        audit.sequence_problems.is_empty(),
        "the log is not 1..={sequence}: {}",
        first(&audit.sequence_problems)
    );
    assert_eq!(
        events.len() as u64,
        sequence,
        "one event per sequence number"
    );

    // 2. Exactly one `created` per interaction the clients were given.
    assert_eq!(audit.created.len(), INTERACTIONS, "created events");
    let logged: HashSet<&String> = audit.created.iter().collect();
    assert_eq!(logged.len(), INTERACTIONS, "created ids are distinct");
    let returned: HashSet<&String> = created.values().collect();
    assert_eq!(created.len(), INTERACTIONS, "one id per idempotency key");
    assert_eq!(
        logged, returned,
        "the created interactions are exactly those the clients got back"
    );

    // 3. Never offered while offered or assigned, never assigned twice.
    assert!(
        audit.transition_problems.is_empty(),
        "impossible transitions in the log: {}",
        first(&audit.transition_problems)
    );

    // 4. No agent over capacity, no capacity released twice.
    assert!(
        audit.capacity_problems.is_empty(),
        "capacity accounting broken: {}",
        first(&audit.capacity_problems)
    );

    // 5. Everything ends resolved, or queued, and the router agrees.
    let finals: Vec<(String, Replayed, Result<v1::Interaction, Status>)> =
        futures::stream::iter(returned.iter().map(|id| (*id).clone()))
            .map(|id| {
                let (routers, replayed) = (routers.clone(), audit.last.get(&id).cloned());
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
            .buffer_unordered(CREATES_IN_FLIGHT)
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
        "interactions not ending resolved or queued as the log says: {}",
        first(&mismatched)
    );
}
