//! Replaying a tenant's event log (JetStream) to check what a user would
//! notice if routing went wrong under faults: an interaction lost or created
//! twice, offered or assigned to two agents at once, an agent over capacity,
//! an event missing or doubled.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use careline_domain::tenant::PerChannel;
use careline_proto::v1;

use crate::events::{is_routing_event, read_tenant_events};

/// How long the relay may take to publish every event once the run is over.
pub const CATCH_UP_DEADLINE: Duration = Duration::from_secs(60);
/// How many problems a failure message lists.
pub const PROBLEMS_SHOWN: usize = 20;
/// How many interactions a failure message shows the history of.
pub const HISTORIES_SHOWN: usize = 5;

/// Where one interaction stands while the log is replayed.
#[derive(Debug, Clone, PartialEq)]
pub enum Replayed {
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
    /// Parked for a follow-up by `agent`; comes back to it or to the queue.
    Pending {
        agent: String,
    },
    /// Closed by its agent.
    Resolved,
    /// Ended otherwise (kind named), or never seen in the log.
    Closed(String),
}

/// What replaying the event log found.
#[derive(Default)]
pub struct Audit {
    /// Events out of place in 1..=N.
    pub sequence_problems: Vec<String>,
    /// Event ids seen more than once.
    pub duplicate_ids: Vec<String>,
    /// Interaction ids in the order of their `created` events.
    pub created: Vec<String>,
    /// Transitions the state machine must never make.
    pub transition_problems: Vec<String>,
    /// An agent holding more than its capacity, or releasing what it never held.
    pub capacity_problems: Vec<String>,
    /// Where each interaction ended.
    pub last: HashMap<String, Replayed>,
    /// Events per kind name, for the summary line.
    pub kinds: HashMap<&'static str, u64>,
}

impl Audit {
    /// Replays `events` (sorted by sequence) for agents whose capacity is
    /// `capacity` on every channel.
    pub fn replay(events: &[v1::Event], capacity: PerChannel) -> Audit {
        let mut audit = Audit::default();
        audit.check_sequences(events);
        let mut held: HashMap<(String, i32), i64> = HashMap::new();
        for event in events {
            match &event.payload {
                Some(v1::event::Payload::Interaction(ix)) => {
                    audit.interaction(event.sequence, ix, &mut held, capacity)
                }
                Some(v1::event::Payload::Agent(agent)) => {
                    audit.agent(event.sequence, agent, &mut held)
                }
                _ => {}
            }
        }
        audit
    }

    /// How many events of `kind` (an `as_str_name`) the log holds.
    pub fn count(&self, kind: &str) -> u64 {
        self.kinds.get(kind).copied().unwrap_or(0)
    }

    /// The checks every fault scenario shares, each failure message ending
    /// with `context` (how to replay the run):
    /// 1. the log is exactly the events 1..=`sequence`, each id once;
    /// 2. one `created` per interaction, and exactly the ids the clients got
    ///    back (`created`: idempotency key -> interaction id);
    /// 3. no impossible transition (offered while held, assigned twice...);
    /// 4. no agent over capacity, no capacity released twice.
    pub fn assert_sound(
        &self,
        events: usize,
        sequence: u64,
        created: &HashMap<String, String>,
        expected: usize,
        context: &str,
    ) {
        assert!(
            self.sequence_problems.is_empty() && self.duplicate_ids.is_empty(),
            "the log is not 1..={sequence} with distinct ids: {}; duplicate ids: {}{context}",
            first(&self.sequence_problems),
            first(&self.duplicate_ids)
        );
        assert_eq!(
            events as u64, sequence,
            "one event per sequence number{context}"
        );
        assert_eq!(self.created.len(), expected, "created events{context}");
        let logged: HashSet<&String> = self.created.iter().collect();
        assert_eq!(logged.len(), expected, "created ids are distinct{context}");
        let returned: HashSet<&String> = created.values().collect();
        assert_eq!(
            created.len(),
            expected,
            "one id per idempotency key{context}"
        );
        assert_eq!(
            logged, returned,
            "the created interactions are exactly those the clients got back{context}"
        );
        assert!(
            self.transition_problems.is_empty(),
            "impossible transitions in the log: {}{context}",
            first(&self.transition_problems)
        );
        assert!(
            self.capacity_problems.is_empty(),
            "capacity accounting broken: {}{context}",
            first(&self.capacity_problems)
        );
    }

    fn check_sequences(&mut self, events: &[v1::Event]) {
        let mut ids = HashSet::new();
        for (index, event) in events.iter().enumerate() {
            let expected = index as u64 + 1;
            if event.sequence != expected && self.sequence_problems.len() <= PROBLEMS_SHOWN {
                self.sequence_problems.push(format!(
                    "position {index}: sequence {} where {expected} was due (event {})",
                    event.sequence, event.event_id
                ));
            }
            if !ids.insert(event.event_id.as_str()) && self.duplicate_ids.len() <= PROBLEMS_SHOWN {
                self.duplicate_ids.push(event.event_id.clone());
            }
        }
    }

    fn interaction(
        &mut self,
        sequence: u64,
        ix: &v1::InteractionEvent,
        held: &mut HashMap<(String, i32), i64>,
        capacity: PerChannel,
    ) {
        use v1::InteractionEventKind as K;
        let kind = K::try_from(ix.kind).unwrap_or(K::Unspecified);
        *self.kinds.entry(kind.as_str_name()).or_default() += 1;
        let id = ix.interaction_id.clone();
        let before = self.last.get(&id).cloned();
        let mut problems = Vec::new();
        let mut problem = |what: String| {
            problems.push(format!(
                "seq {sequence} {id}: {} ({what}; was {before:?})",
                kind.as_str_name()
            ))
        };
        let held_by = |agent: &str| match &before {
            Some(Replayed::Assigned { agent: holder }) => holder == agent,
            _ => false,
        };
        let offered_to = |agent: &str, offer_id: &str| match &before {
            Some(Replayed::Offered { agent: to, offer }) => to == agent && offer == offer_id,
            _ => false,
        };
        let after = match kind {
            K::Created => {
                self.created.push(id.clone());
                if before.is_some() {
                    problem("created twice".into());
                }
                Replayed::Queued
            }
            K::Offered => {
                if before != Some(Replayed::Queued) {
                    problem("offered while not queued".into());
                }
                let now = held.entry((ix.agent_id.clone(), ix.channel)).or_default();
                *now += 1;
                let limit = channel_capacity(capacity, ix.channel);
                if *now > limit {
                    self.capacity_problems.push(format!(
                        "seq {sequence}: {} holds {now} on channel {} (capacity {limit})",
                        ix.agent_id, ix.channel
                    ));
                }
                Replayed::Offered {
                    agent: ix.agent_id.clone(),
                    offer: ix.offer_id.clone(),
                }
            }
            K::Assigned => {
                if !offered_to(&ix.agent_id, &ix.offer_id) {
                    problem(format!(
                        "assigned to {} (offer {}) without its pending offer",
                        ix.agent_id, ix.offer_id
                    ));
                }
                Replayed::Assigned {
                    agent: ix.agent_id.clone(),
                }
            }
            K::OfferRejected | K::OfferTimedOut | K::OfferRevoked => {
                if !offered_to(&ix.agent_id, &ix.offer_id) {
                    problem(format!(
                        "offer {} of {} withdrawn but not pending",
                        ix.offer_id, ix.agent_id
                    ));
                }
                Replayed::Withdrawn
            }
            K::Requeued => {
                if !matches!(
                    before,
                    Some(
                        Replayed::Withdrawn | Replayed::Assigned { .. } | Replayed::Pending { .. }
                    )
                ) {
                    problem("requeued while neither withdrawn, assigned nor pending".into());
                }
                Replayed::Queued
            }
            K::Transferred => {
                if !held_by(&ix.agent_id) {
                    problem(format!("transferred by {} without holding it", ix.agent_id));
                }
                Replayed::Queued
            }
            K::Pending => {
                if !held_by(&ix.agent_id) {
                    problem(format!("set pending by {} without holding it", ix.agent_id));
                }
                Replayed::Pending {
                    agent: ix.agent_id.clone(),
                }
            }
            K::Overflowed => {
                if before != Some(Replayed::Queued) {
                    problem("overflowed while not queued".into());
                }
                Replayed::Queued
            }
            K::Resolved => {
                // An agent may also close a follow-up it parked.
                let parked_by =
                    matches!(&before, Some(Replayed::Pending { agent }) if *agent == ix.agent_id);
                if !held_by(&ix.agent_id) && !parked_by {
                    problem(format!(
                        "resolved by {} without holding or parking it",
                        ix.agent_id
                    ));
                }
                Replayed::Resolved
            }
            other => {
                problem(format!("unexpected kind {other:?} in this scenario"));
                Replayed::Closed(other.as_str_name().to_string())
            }
        };
        self.transition_problems.extend(problems);
        self.last.insert(id, after);
    }

    fn agent(
        &mut self,
        sequence: u64,
        agent: &v1::AgentEvent,
        held: &mut HashMap<(String, i32), i64>,
    ) {
        let kind = v1::AgentEventKind::try_from(agent.kind).unwrap_or_default();
        *self.kinds.entry(kind.as_str_name()).or_default() += 1;
        if kind != v1::AgentEventKind::CapacityReleased {
            return;
        }
        let now = held
            .entry((agent.agent_id.clone(), agent.channel))
            .or_default();
        *now -= 1;
        if *now < 0 {
            self.capacity_problems.push(format!(
                "seq {sequence}: {} released more capacity than it held on channel {} ({now})",
                agent.agent_id, agent.channel
            ));
        }
    }
}

fn channel_capacity(capacity: PerChannel, channel: i32) -> i64 {
    match v1::Channel::try_from(channel) {
        Ok(v1::Channel::Voice) => i64::from(capacity.voice),
        Ok(v1::Channel::Chat) => i64::from(capacity.chat),
        Ok(v1::Channel::Email) => i64::from(capacity.email),
        _ => 0,
    }
}

/// What the log says happened to each of `ids` (at most [`HISTORIES_SHOWN`]),
/// one line per event: the evidence for a failure message.
pub fn histories(events: &[v1::Event], ids: &[String]) -> String {
    let mut out = String::new();
    for id in ids.iter().take(HISTORIES_SHOWN) {
        out.push_str(&format!("\n  {id}:"));
        for event in events {
            if let Some(v1::event::Payload::Interaction(ix)) = &event.payload
                && ix.interaction_id == *id
            {
                let kind = v1::InteractionEventKind::try_from(ix.kind).unwrap_or_default();
                out.push_str(&format!(
                    "\n    seq {} {} {} agent={} offer={} detail={}",
                    event.sequence,
                    event.event_id,
                    kind.as_str_name(),
                    ix.agent_id,
                    ix.offer_id,
                    ix.detail
                ));
            }
        }
    }
    out
}

/// Those of `ids` that the log shows assigned twice to the same agent (a
/// follow-up coming back to its agent, a transfer back to an earlier one).
pub fn reassigned_to_same_agent(events: &[v1::Event], ids: &[String]) -> Vec<String> {
    let wanted: HashSet<&String> = ids.iter().collect();
    let mut assigned: HashSet<(&str, &str)> = HashSet::new();
    let mut again: Vec<String> = Vec::new();
    for event in events {
        if let Some(v1::event::Payload::Interaction(ix)) = &event.payload
            && ix.kind == v1::InteractionEventKind::Assigned as i32
            && wanted.contains(&ix.interaction_id)
            && !assigned.insert((&ix.interaction_id, &ix.agent_id))
            && !again.contains(&ix.interaction_id)
        {
            again.push(ix.interaction_id.clone());
        }
    }
    again
}

/// The first [`PROBLEMS_SHOWN`] problems, one a line, after their count.
pub fn first<T: std::fmt::Debug>(problems: &[T]) -> String {
    let shown: Vec<String> = problems
        .iter()
        .take(PROBLEMS_SHOWN)
        .map(|p| format!("  {p:?}"))
        .collect();
    format!(
        "{} problem(s), first ones:\n{}",
        problems.len(),
        shown.join("\n")
    )
}

/// The routing sequence of `tenant`: how many events its routing state
/// changes have produced so far.
pub async fn routing_sequence(
    redis: &mut careline_kit::RedisConnection,
    tenant: &str,
) -> anyhow::Result<u64> {
    let key = format!("{}settings", careline_routing::keys::prefix(tenant));
    let seq: Option<u64> = redis::cmd("HGET")
        .arg(&key)
        .arg("seq")
        .query_async(redis)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// Reads the tenant's routing log up to the routing sequence it has now,
/// once the relay has published that far: the events numbered up to that
/// sequence (more may follow: timers keep moving queued work along its
/// overflow steps), sorted by sequence (JetStream may store them out of
/// order), and the sequence. Events missing or doubled below it are the
/// audit's to find.
pub async fn complete_log(
    jetstream: &jetstream::Context,
    redis: &mut careline_kit::RedisConnection,
    tenant: &str,
) -> anyhow::Result<(Vec<v1::Event>, u64)> {
    let deadline = Instant::now() + CATCH_UP_DEADLINE;
    let sequence = routing_sequence(redis, tenant).await?;
    loop {
        let mut events: Vec<v1::Event> = read_tenant_events(jetstream, tenant)
            .await?
            .into_iter()
            .filter(|e| is_routing_event(e) && e.sequence <= sequence)
            .collect();
        let max = events.iter().map(|e| e.sequence).max().unwrap_or(0);
        if max >= sequence {
            events.sort_by_key(|e| e.sequence);
            return Ok((events, sequence));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the relay never published event {sequence} within {CATCH_UP_DEADLINE:?}: \
             {} events stored up to it, highest {max}",
            events.len()
        );
        tokio::time::sleep(careline_testkit::POLL_INTERVAL).await;
    }
}
