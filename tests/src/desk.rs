//! Agent desktops for fault scenarios: each logs in on a presence replica
//! over a real session stream, answers offers at random (accept, reject or
//! ignore until the offer times out), works accepted interactions through
//! the routers (resolve, transfer to a queue or an agent, park for a
//! follow-up), and reconnects to another replica when its stream breaks.
//! Every choice is drawn from the run's seed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use careline_domain::tenant::TenantConfig;
use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind as EventKind;
use careline_proto::v1::agent_session_request::Kind as RequestKind;
use careline_proto::v1::presence_client::PresenceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Code, Status};

use crate::client;
use crate::routers::{QUEUES, Routers};
use crate::tenant;

/// How often a desk sends a heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// Pause before a desk reconnects after its stream broke.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// Session requests buffered towards presence.
const SESSION_BUFFER: usize = 64;

/// How desks answer, in percent: offers are accepted, rejected or (the rest)
/// ignored until they time out; accepted work is transferred to a queue, to
/// another agent, parked for a follow-up, or (the rest) resolved.
#[derive(Debug, Clone)]
pub struct Mix {
    /// Offers accepted.
    pub accept_percent: u32,
    /// Offers rejected (the rest of the offers are ignored).
    pub reject_percent: u32,
    /// Assignments transferred to a random queue.
    pub transfer_to_queue_percent: u32,
    /// Assignments transferred to a random other agent.
    pub transfer_to_agent_percent: u32,
    /// Assignments parked for a follow-up (the rest are resolved).
    pub pending_percent: u32,
    /// How long an agent works on an assignment before finishing it.
    pub handle_ms: Range<u64>,
    /// How long a parked interaction waits for its follow-up.
    pub pending_ms: Range<u64>,
}

/// What the desks did, counted as they went.
#[derive(Default)]
pub struct Tally {
    /// Offers that reached a desk.
    pub offers_seen: AtomicU64,
    /// Offers that reached the desk after their deadline.
    pub offers_late: AtomicU64,
    /// Longest time from an offer being made to its arrival at the desk.
    pub offer_lag_max_ms: AtomicU64,
    /// Offers accepted.
    pub accepted: AtomicU64,
    /// Offers rejected.
    pub rejected: AtomicU64,
    /// Offers left to time out.
    pub ignored: AtomicU64,
    /// Assignments resolved.
    pub resolved: AtomicU64,
    /// Assignments transferred to a queue.
    pub transferred_to_queue: AtomicU64,
    /// Assignments transferred to an agent.
    pub transferred_to_agent: AtomicU64,
    /// Assignments parked for a follow-up.
    pub pending: AtomicU64,
    /// Transport failures of resolve / transfer / pending calls, retried.
    pub finish_retries: AtomicU64,
    /// FAILED_PRECONDITION answers: a retried call whose first attempt went
    /// through, or work the agent no longer holds.
    pub finish_refused: AtomicU64,
    /// Error notices on the session stream.
    pub notices: AtomicU64,
    /// Desks whose first session started.
    pub logged_in: AtomicUsize,
    /// Sessions opened again after a broken stream.
    pub reconnects: AtomicU64,
    /// Calls that failed for a reason other than a dying replica.
    pub failures: std::sync::Mutex<Vec<String>>,
}

/// The value of a counter.
pub fn count(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What every desk of a run shares.
#[derive(Clone)]
pub struct Desks {
    /// Presence replicas; desks reconnect to the next one when a stream breaks.
    pub presence: Vec<SocketAddr>,
    /// Where desks resolve, transfer and park their work.
    pub routers: Routers,
    /// What the desks did.
    pub tally: Arc<Tally>,
    /// How they answer.
    pub mix: Mix,
    /// The offer timeout of the tenant, to tell how late an offer arrived.
    pub offer_timeout_secs: u32,
    /// Every agent of the tenant, the targets of transfers to an agent.
    pub agents: Arc<Vec<String>>,
    /// Work under way (resolves, transfers), awaited at the end.
    pub work: TaskTracker,
    /// Ends every session.
    pub stop: CancellationToken,
}

impl Desks {
    /// Desks for every agent of `tenant`, answering by `mix`, with nothing
    /// tallied or under way yet.
    pub fn for_tenant(
        tenant: &TenantConfig,
        presence: Vec<SocketAddr>,
        routers: Routers,
        mix: Mix,
    ) -> Desks {
        Desks {
            presence,
            routers,
            tally: Arc::default(),
            mix,
            offer_timeout_secs: tenant.routing.offer_timeout_secs.chat,
            agents: Arc::new(tenant.agents.iter().map(|a| a.id.clone()).collect()),
            work: TaskTracker::new(),
            stop: CancellationToken::new(),
        }
    }

    /// Starts every desk (see [`Desks::spawn_all`]) and waits until every
    /// agent is logged in; `context` ends the failure message (the seed).
    pub async fn log_in_all(&self, seed: u64, within: Duration, context: &str) -> JoinSet<()> {
        let running = self.spawn_all(seed);
        let agents = self.agents.len();
        careline_testkit::assert_eventually!(
            within: within,
            self.tally.logged_in.load(Ordering::Relaxed) == agents,
            "all {agents} agents logged in ({} so far){context}", self.tally.logged_in.load(Ordering::Relaxed)
        );
        running
    }

    /// Ends the run's desks: stops every session and waits for the desks and
    /// their work (resolves, transfers) to end. Then, when `resettle`, waits
    /// until no offer is left (with every desk gone none can be made: what
    /// remains is queued, and stays so while the log is read), and checks
    /// that no client call failed; `context` ends the failure message.
    pub async fn close(&self, mut running: JoinSet<()>, resettle: bool, context: &str) {
        self.stop.cancel();
        while let Some(joined) = running.join_next().await {
            joined.expect("an agent desk panicked");
        }
        self.work.close();
        self.work.wait().await;
        if resettle {
            crate::routers::await_settled(&self.routers, context)
                .await
                .unwrap_or_else(|unsettled| {
                    panic!(
                        "offers made after the desks left never ended: {:?}{context}",
                        crate::routers::state_counts(&unsettled)
                    )
                });
        }
        let failures = self.tally.failures.lock().unwrap().clone();
        assert!(
            failures.is_empty(),
            "client calls failed: {}{context}",
            crate::audit::first(&failures)
        );
    }

    /// Starts one desk per agent, spread over the presence replicas; desk
    /// `i` draws its choices from `seed + i`.
    pub fn spawn_all(&self, seed: u64) -> JoinSet<()> {
        let mut desks = JoinSet::new();
        for (index, agent) in self.agents.iter().enumerate() {
            let desk = Desk {
                agent_id: agent.clone(),
                shared: self.clone(),
                rng: StdRng::seed_from_u64(seed.wrapping_add(index as u64)),
                handling: Arc::default(),
                started_once: false,
            };
            desks.spawn(desk.run(index % self.presence.len()));
        }
        desks
    }
}

/// What an agent does with an assignment.
#[derive(Debug)]
enum Finish {
    Resolve,
    TransferToQueue(&'static str),
    TransferToAgent(String),
    Pending { wait_ms: u64, return_to_queue: bool },
}

/// One agent's desktop.
struct Desk {
    agent_id: String,
    shared: Desks,
    rng: StdRng,
    /// Interactions being worked on, so an assignment re-sent after a
    /// reconnect is not worked twice; an interaction leaves the set when its
    /// work is finished, so it is worked again if it comes back to this agent.
    handling: Arc<Mutex<HashSet<String>>>,
    started_once: bool,
}

impl Desk {
    async fn run(mut self, home: usize) {
        let mut replica = home;
        loop {
            let ended = self.session(self.shared.presence[replica]).await;
            if self.shared.stop.is_cancelled() {
                return;
            }
            bump(&self.shared.tally.reconnects);
            if let Err(error) = ended {
                eprintln!("{}: session ended ({error}); reconnecting", self.agent_id);
            }
            replica = (replica + 1) % self.shared.presence.len();
            tokio::select! {
                _ = self.shared.stop.cancelled() => return,
                _ = tokio::time::sleep(RECONNECT_PAUSE) => {}
            }
        }
    }

    async fn session(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel(SESSION_BUFFER);
        tx.send(request(RequestKind::Login(v1::Login {
            tenants: vec![v1::TenantLogin {
                tenant_id: tenant::TENANT.into(),
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
                _ = self.shared.stop.cancelled() => return Ok(()),
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
        let tally = self.shared.tally.clone();
        match event? {
            EventKind::Started(_) => {
                if !self.started_once {
                    self.started_once = true;
                    tally.logged_in.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            EventKind::Offer(offer) => {
                bump(&tally.offers_seen);
                let made_ms = offer.deadline_ms - i64::from(self.shared.offer_timeout_secs) * 1000;
                let lag_ms = u64::try_from(now_ms() - made_ms).unwrap_or(0);
                tally.offer_lag_max_ms.fetch_max(lag_ms, Ordering::Relaxed);
                if now_ms() > offer.deadline_ms {
                    bump(&tally.offers_late);
                }
                let answer = v1::OfferAnswer {
                    tenant_id: tenant::TENANT.into(),
                    offer_id: offer.offer_id,
                };
                let mix = &self.shared.mix;
                let roll = self.rng.random_range(0..100);
                if roll < mix.accept_percent {
                    bump(&tally.accepted);
                    Some(RequestKind::Accept(answer))
                } else if roll < mix.accept_percent + mix.reject_percent {
                    bump(&tally.rejected);
                    Some(RequestKind::Reject(answer))
                } else {
                    bump(&tally.ignored);
                    None
                }
            }
            EventKind::Assigned(assigned) => {
                let interaction = assigned.interaction?;
                let fresh = self
                    .handling
                    .lock()
                    .expect("handling set")
                    .insert(interaction.id.clone());
                if fresh {
                    let finish = self.choose_finish();
                    let handle_ms = self.rng.random_range(self.shared.mix.handle_ms.clone());
                    let (desks, agent, handling) = (
                        self.shared.clone(),
                        self.agent_id.clone(),
                        self.handling.clone(),
                    );
                    self.shared.work.spawn(async move {
                        finish_work(&desks, &agent, &interaction.id, finish, handle_ms).await;
                        handling
                            .lock()
                            .expect("handling set")
                            .remove(&interaction.id);
                    });
                }
                None
            }
            EventKind::StateChanged(changed)
                if changed.state == v1::AgentState::Away as i32 && changed.reason == "missed" =>
            {
                Some(RequestKind::SetState(v1::SetState {
                    tenant_id: tenant::TENANT.into(),
                    state: v1::AgentState::Available as i32,
                    away_reason: String::new(),
                }))
            }
            EventKind::Error(_) => {
                bump(&tally.notices);
                None
            }
            EventKind::StateChanged(_) | EventKind::Revoked(_) => None,
        }
    }

    fn choose_finish(&mut self) -> Finish {
        let mix = &self.shared.mix;
        let roll = self.rng.random_range(0..100);
        let to_queue = mix.transfer_to_queue_percent;
        let to_agent = to_queue + mix.transfer_to_agent_percent;
        let pending = to_agent + mix.pending_percent;
        if roll < to_queue {
            Finish::TransferToQueue(QUEUES[self.rng.random_range(0..QUEUES.len())])
        } else if roll < to_agent {
            let agents = &self.shared.agents;
            let peer = &agents[self.rng.random_range(0..agents.len())];
            if *peer == self.agent_id {
                Finish::Resolve
            } else {
                Finish::TransferToAgent(peer.clone())
            }
        } else if roll < pending {
            Finish::Pending {
                wait_ms: self.rng.random_range(mix.pending_ms.clone()),
                return_to_queue: self.rng.random_bool(0.5),
            }
        } else {
            Finish::Resolve
        }
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

/// Works an assignment for `handle_ms`, then finishes it as chosen. A
/// transfer or follow-up the router refuses is resolved instead, so no
/// interaction stays assigned to a desk that gave up on it.
async fn finish_work(desks: &Desks, agent: &str, id: &str, finish: Finish, handle_ms: u64) {
    tokio::time::sleep(Duration::from_millis(handle_ms)).await;
    let tally = &desks.tally;
    let outcome = match hand_over(desks, id, agent, &finish).await {
        Err(status)
            if status.code() == Code::FailedPrecondition && !matches!(finish, Finish::Resolve) =>
        {
            resolve(&desks.routers, tally, id, agent).await
        }
        other => other,
    };
    match outcome {
        Ok(counter) => bump(counter),
        Err(status) if status.code() == Code::FailedPrecondition => bump(&tally.finish_refused),
        Err(status) => tally
            .failures
            .lock()
            .unwrap()
            .push(format!("{finish:?} of {id} by {agent}: {status:?}")),
    }
}

/// Finishes an assignment as chosen; returns the counter of what was done.
async fn hand_over<'a>(
    desks: &'a Desks,
    id: &str,
    agent: &str,
    finish: &Finish,
) -> Result<&'a AtomicU64, Status> {
    let (tally, routers) = (&desks.tally, &desks.routers);
    let transfer = |target: v1::transfer_request::Target| v1::TransferRequest {
        interaction_id: id.into(),
        agent_id: agent.into(),
        target: Some(target),
        notes: "handing over".into(),
    };
    match finish {
        Finish::Resolve => resolve(routers, tally, id, agent).await,
        Finish::TransferToQueue(queue) => {
            let request = transfer(v1::transfer_request::Target::QueueId((*queue).into()));
            routers
                .call(&tally.finish_retries, |mut router| {
                    let request = request.clone();
                    async move { router.transfer(request).await }
                })
                .await
                .map(|_| &tally.transferred_to_queue)
        }
        Finish::TransferToAgent(peer) => {
            let request = transfer(v1::transfer_request::Target::ToAgentId(peer.clone()));
            routers
                .call(&tally.finish_retries, |mut router| {
                    let request = request.clone();
                    async move { router.transfer(request).await }
                })
                .await
                .map(|_| &tally.transferred_to_agent)
        }
        Finish::Pending {
            wait_ms,
            return_to_queue,
        } => {
            // Timed from each attempt: a retry after an outage still asks
            // for a follow-up in the future.
            let wait_ms = i64::try_from(*wait_ms).unwrap_or(i64::MAX);
            routers
                .call(&tally.finish_retries, |mut router| {
                    let request = v1::SetPendingRequest {
                        interaction_id: id.into(),
                        agent_id: agent.into(),
                        until_ms: now_ms().saturating_add(wait_ms),
                        return_to_queue: *return_to_queue,
                        notes: "follow-up".into(),
                    };
                    async move { router.set_pending(request).await }
                })
                .await
                .map(|_| &tally.pending)
        }
    }
}

async fn resolve<'a>(
    routers: &Routers,
    tally: &'a Tally,
    id: &str,
    agent: &str,
) -> Result<&'a AtomicU64, Status> {
    let request = v1::ResolveRequest {
        interaction_id: id.into(),
        agent_id: agent.into(),
        disposition: "answered".into(),
        ..Default::default()
    };
    routers
        .call(&tally.finish_retries, |mut router| {
            let request = request.clone();
            async move { router.resolve(request).await }
        })
        .await
        .map(|_| &tally.resolved)
}
