//! The agent sessions hosted on this replica, and the delivery of routing
//! events to them.
//!
//! Routing scripts publish every change on NATS (`careline.<tenant>.interaction.<kind>`,
//! `careline.<tenant>.agent.<kind>`); every presence replica subscribes and
//! forwards the events that concern an agent it hosts. A session is registered
//! before its agent logs in, so an offer made during login is buffered rather
//! than lost; once started, the held interactions are re-sent and buffered
//! events follow, without duplicates. Each session has a bounded outgoing
//! buffer: a client that does not keep up is cut off instead of growing memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind;
use careline_routing::RoutingStore;
use futures::{Stream, StreamExt};
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::PresenceError;

/// What a session sends its client: an event, or the error that ends it.
pub type Outgoing = Result<v1::AgentSessionEvent, PresenceError>;

/// Events buffered per session before the client counts as too slow.
pub const SESSION_BUFFER: usize = 256;
/// Offers and assignments remembered per session to drop duplicates.
const DELIVERED_MEMORY: usize = 128;
/// NATS subjects of the events sessions care about.
pub const EVENT_SUBJECTS: [&str; 2] = ["careline.*.interaction.>", "careline.*.agent.>"];

/// One session's registration for one (tenant, agent).
struct Hosted {
    session_id: String,
    tx: mpsc::Sender<Outgoing>,
    /// Cancelled when the client falls behind; the session then ends.
    too_slow: CancellationToken,
    /// Events that arrived before the session started.
    starting: Option<Vec<v1::AgentSessionEvent>>,
    /// Keys of offers and assignments already sent (see [`dedupe_key`]).
    delivered: VecDeque<String>,
}

impl Hosted {
    fn already_delivered(&mut self, event: &v1::AgentSessionEvent) -> bool {
        let Some(key) = dedupe_key(event) else {
            return false;
        };
        if self.delivered.contains(&key) {
            return true;
        }
        if self.delivered.len() == DELIVERED_MEMORY {
            self.delivered.pop_front();
        }
        self.delivered.push_back(key);
        false
    }

    /// Events can reach presence out of order (see `careline_routing::relay`):
    /// a revocation that overtook its offer, or of an offer that was never
    /// shown, would leave the client a revocation of nothing.
    fn revokes_unsent_offer(&self, event: &v1::AgentSessionEvent) -> bool {
        match &event.kind {
            Some(Kind::Revoked(revoked)) if !revoked.offer_id.is_empty() => {
                let key = format!("o:{}", revoked.offer_id);
                !self.delivered.contains(&key)
            }
            _ => false,
        }
    }

    /// Sends unless it is a duplicate or revokes an offer this session was
    /// never sent; false when the client is too slow.
    fn send(&mut self, event: v1::AgentSessionEvent) -> bool {
        if self.already_delivered(&event) || self.revokes_unsent_offer(&event) {
            return true;
        }
        match self.tx.try_send(Ok(event)) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.too_slow.cancel();
                false
            }
        }
    }
}

/// Offers are sent once per offer, assignments once per accepted offer: an
/// interaction that comes back to the same agent (a follow-up, a transfer
/// back) is a new assignment and must reach the desk again.
fn dedupe_key(event: &v1::AgentSessionEvent) -> Option<String> {
    match event.kind.as_ref()? {
        Kind::Offer(offer) => Some(format!("o:{}", offer.offer_id)),
        Kind::Assigned(assigned) => Some(format!("a:{}", assigned.interaction.as_ref()?.offer_id)),
        _ => None,
    }
}

/// The dedupe key of the event that delivers a held interaction.
pub fn held_key(held: &careline_routing::Held) -> String {
    let kind = if held.assigned { "a" } else { "o" };
    format!("{kind}:{}", held.offer_id)
}

/// What became of an event handed to [`SessionRegistry::deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Sent (or buffered until the session starts, or dropped as a duplicate).
    Sent,
    /// No session of this agent is hosted here.
    NotHosted,
    /// The client was too slow and is being disconnected.
    TooSlow,
}

/// The live sessions of this replica: (tenant, agent) -> session.
#[derive(Clone, Default)]
pub struct SessionRegistry {
    hosted: Arc<Mutex<HashMap<(String, String), Hosted>>>,
}

impl std::fmt::Debug for SessionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRegistry").finish_non_exhaustive()
    }
}

fn key(tenant: &str, agent: &str) -> (String, String) {
    (tenant.to_string(), agent.to_string())
}

impl SessionRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Hosted>> {
        self.hosted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a starting session of `agent` in `tenant`, replacing any
    /// older session of the same agent on this replica.
    pub fn register(
        &self,
        tenant: &str,
        agent: &str,
        session_id: &str,
        tx: mpsc::Sender<Outgoing>,
        too_slow: CancellationToken,
    ) {
        let hosted = Hosted {
            session_id: session_id.to_string(),
            tx,
            too_slow,
            starting: Some(Vec::new()),
            delivered: VecDeque::new(),
        };
        if self.lock().insert(key(tenant, agent), hosted).is_none() {
            metrics::gauge!("careline_agent_sessions", "tenant" => tenant.to_string())
                .increment(1.0);
        }
    }

    /// Starts a registered session: sends `first` (SessionStarted, then the
    /// held interactions), then whatever arrived meanwhile.
    pub fn start(
        &self,
        tenant_agents: &[(String, String)],
        session_id: &str,
        first: Vec<v1::AgentSessionEvent>,
    ) -> Delivery {
        let mut hosted = self.lock();
        let mut mine: Vec<&(String, String)> = Vec::new();
        for tenant_agent in tenant_agents {
            if hosted
                .get(tenant_agent)
                .is_some_and(|h| h.session_id == session_id)
            {
                mine.push(tenant_agent);
            }
        }
        let Some(sender) = mine.first().map(|m| (*m).clone()) else {
            return Delivery::NotHosted;
        };
        for event in first {
            let tenant = event_tenant(&event).unwrap_or_default().to_string();
            let target = mine
                .iter()
                .find(|(t, _)| *t == tenant)
                .copied()
                .unwrap_or(&sender);
            let Some(entry) = hosted.get_mut(target) else {
                continue;
            };
            if !entry.send(event) {
                return Delivery::TooSlow;
            }
        }
        for tenant_agent in mine {
            let Some(entry) = hosted.get_mut(tenant_agent) else {
                continue;
            };
            for event in entry.starting.take().unwrap_or_default() {
                if !entry.send(event) {
                    return Delivery::TooSlow;
                }
            }
        }
        Delivery::Sent
    }

    /// Sends `event` to the agent's session; `session_id` restricts it to
    /// that session (replies), `None` to whichever is hosted (bus events).
    pub fn deliver(
        &self,
        tenant: &str,
        agent: &str,
        session_id: Option<&str>,
        event: v1::AgentSessionEvent,
    ) -> Delivery {
        let mut hosted = self.lock();
        let Some(entry) = hosted.get_mut(&key(tenant, agent)) else {
            return Delivery::NotHosted;
        };
        if session_id.is_some_and(|id| id != entry.session_id) {
            return Delivery::NotHosted;
        }
        if let Some(buffer) = entry.starting.as_mut() {
            if buffer.len() >= SESSION_BUFFER {
                entry.too_slow.cancel();
                return Delivery::TooSlow;
            }
            buffer.push(event);
            return Delivery::Sent;
        }
        if entry.send(event) {
            Delivery::Sent
        } else {
            Delivery::TooSlow
        }
    }

    /// Whether the session `session_id` of `agent` already got the event
    /// with this dedupe key (see [`held_key`]).
    pub fn was_delivered(
        &self,
        tenant: &str,
        agent: &str,
        session_id: &str,
        dedupe_key: &str,
    ) -> bool {
        self.lock().get(&key(tenant, agent)).is_some_and(|h| {
            h.session_id == session_id && h.delivered.iter().any(|k| k == dedupe_key)
        })
    }

    /// Whether a session of `agent` in `tenant` is hosted here.
    pub fn hosts(&self, tenant: &str, agent: &str) -> bool {
        self.lock().contains_key(&key(tenant, agent))
    }

    /// Removes the registration if it still belongs to `session_id`.
    pub fn unregister(&self, tenant: &str, agent: &str, session_id: &str) {
        let mut hosted = self.lock();
        let k = key(tenant, agent);
        if hosted.get(&k).is_some_and(|h| h.session_id == session_id) {
            hosted.remove(&k);
            metrics::gauge!("careline_agent_sessions", "tenant" => tenant.to_string())
                .decrement(1.0);
        }
    }

    /// Whether no session is hosted here.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

fn event_tenant(event: &v1::AgentSessionEvent) -> Option<&str> {
    Some(match event.kind.as_ref()? {
        Kind::Offer(e) => &e.tenant_id,
        Kind::Assigned(e) => &e.tenant_id,
        Kind::Revoked(e) => &e.tenant_id,
        Kind::StateChanged(e) => &e.tenant_id,
        Kind::Started(_) | Kind::Error(_) => return None,
    })
}

/// The Offer event for an interaction offered to an agent.
pub fn offer_event(
    tenant: &str,
    offer_id: &str,
    deadline_ms: i64,
    interaction: v1::Interaction,
    member_history: Vec<v1::PastContact>,
) -> v1::AgentSessionEvent {
    v1::AgentSessionEvent {
        kind: Some(Kind::Offer(v1::Offer {
            tenant_id: tenant.to_string(),
            offer_id: offer_id.to_string(),
            deadline_ms,
            interaction: Some(interaction),
            member_history,
        })),
    }
}

/// [`offer_event`] with the member's recent history read from the store; an
/// offer without it beats no offer, so a failed read only leaves it out.
pub async fn offer_with_history(
    store: &RoutingStore,
    tenant: &str,
    offer_id: &str,
    deadline_ms: i64,
    interaction: v1::Interaction,
) -> v1::AgentSessionEvent {
    let history = match store.member_history(tenant, &interaction.member_ref).await {
        Ok(history) => history,
        Err(error) => {
            tracing::warn!(%tenant, interaction_id = %interaction.id, %error, "offer sent without the member's history");
            Vec::new()
        }
    };
    offer_event(tenant, offer_id, deadline_ms, interaction, history)
}

/// The Assignment event for an interaction assigned to an agent.
pub fn assignment_event(tenant: &str, interaction: v1::Interaction) -> v1::AgentSessionEvent {
    v1::AgentSessionEvent {
        kind: Some(Kind::Assigned(v1::Assignment {
            tenant_id: tenant.to_string(),
            interaction: Some(interaction),
        })),
    }
}

/// The proto state of a state name used in routing events.
pub fn state_from_name(name: &str) -> v1::AgentState {
    match name {
        "available" => v1::AgentState::Available,
        "away" => v1::AgentState::Away,
        "offline" => v1::AgentState::Offline,
        _ => v1::AgentState::Unspecified,
    }
}

/// Forwards bus events to the sessions hosted here until `shutdown`.
/// Events are handled one at a time, so each session sees them in order.
pub async fn dispatch_events(
    registry: SessionRegistry,
    store: RoutingStore,
    mut messages: impl Stream<Item = async_nats::Message> + Unpin,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            message = messages.next() => message,
        };
        let Some(message) = message else {
            tracing::warn!("event subscription closed; sessions get no more routing events");
            return;
        };
        match v1::Event::decode(message.payload) {
            Ok(event) => dispatch(&registry, &store, event, message.headers.as_ref()).await,
            Err(error) => {
                tracing::debug!(subject = %message.subject, %error, "undecodable event ignored")
            }
        }
    }
}

/// Forwards one event to the session of the agent it concerns, if hosted here,
/// in a `presence.deliver` span continuing the publisher's trace (`headers`):
/// for an interaction's event, the contact's trace. Events for agents hosted
/// elsewhere cost no span.
pub async fn dispatch(
    registry: &SessionRegistry,
    store: &RoutingStore,
    event: v1::Event,
    headers: Option<&async_nats::HeaderMap>,
) {
    let agent = match &event.payload {
        Some(v1::event::Payload::Interaction(ix)) => &ix.agent_id,
        Some(v1::event::Payload::Agent(agent)) => &agent.agent_id,
        _ => return,
    };
    if agent.is_empty() || !registry.hosts(&event.tenant_id, agent) {
        return;
    }
    let span = tracing::info_span!(
        "presence.deliver",
        tenant = %event.tenant_id,
        event_id = %event.event_id,
    );
    careline_bus::trace_context::set_parent_from(&span, headers);
    deliver(registry, store, event).instrument(span).await
}

/// Forwards one event to the session of the hosted agent it concerns.
async fn deliver(registry: &SessionRegistry, store: &RoutingStore, event: v1::Event) {
    let tenant = event.tenant_id.as_str();
    let (agent, session_event) = match event.payload {
        Some(v1::event::Payload::Interaction(ix)) => {
            let Some(session_event) = interaction_event(store, tenant, &ix).await else {
                return;
            };
            (ix.agent_id, session_event)
        }
        Some(v1::event::Payload::Agent(agent)) => {
            use v1::AgentEventKind as K;
            let kind = K::try_from(agent.kind).unwrap_or(K::Unspecified);
            if !matches!(kind, K::StateChanged | K::LoggedOut) {
                return;
            }
            let changed = v1::StateChanged {
                tenant_id: tenant.to_string(),
                state: state_from_name(&agent.state) as i32,
                reason: agent.reason,
            };
            (
                agent.agent_id,
                v1::AgentSessionEvent {
                    kind: Some(Kind::StateChanged(changed)),
                },
            )
        }
        _ => return,
    };
    let is_offer = matches!(session_event.kind, Some(Kind::Offer(_)));
    match registry.deliver(tenant, &agent, None, session_event) {
        Delivery::Sent if is_offer => {
            metrics::counter!("careline_offers_delivered_total", "tenant" => tenant.to_string())
                .increment(1);
        }
        Delivery::TooSlow => {
            tracing::info!(%tenant, agent_id = %agent, "agent session too slow; disconnecting")
        }
        _ => {}
    }
}

/// The session event for an interaction event about a hosted agent, if any.
async fn interaction_event(
    store: &RoutingStore,
    tenant: &str,
    ix: &v1::InteractionEvent,
) -> Option<v1::AgentSessionEvent> {
    use v1::InteractionEventKind as K;
    let revoked = |offer_id: &str, reason: &str| v1::AgentSessionEvent {
        kind: Some(Kind::Revoked(v1::Revocation {
            tenant_id: tenant.to_string(),
            offer_id: offer_id.to_string(),
            interaction_id: ix.interaction_id.clone(),
            reason: reason.to_string(),
        })),
    };
    let load = || async {
        match store.get_interaction(tenant, &ix.interaction_id).await {
            Ok(interaction) => Some(interaction),
            Err(error) => {
                tracing::warn!(%tenant, interaction_id = %ix.interaction_id, %error, "could not load an interaction for its agent");
                None
            }
        }
    };
    match K::try_from(ix.kind).unwrap_or(K::Unspecified) {
        K::Offered => {
            let interaction = load().await?;
            // Events can arrive out of order, late or twice: an offer already
            // answered, revoked or timed out would be a dead offer on screen.
            let still_pending = interaction.state == v1::InteractionState::Offered as i32
                && interaction.offer_id == ix.offer_id
                && interaction.agent_id == ix.agent_id;
            if !still_pending {
                return None;
            }
            let deadline_ms = ix.detail.parse().unwrap_or(0);
            Some(offer_with_history(store, tenant, &ix.offer_id, deadline_ms, interaction).await)
        }
        K::Assigned => {
            let interaction = load().await?;
            // Likewise for an assignment that has since ended or moved on.
            let still_assigned = interaction.state == v1::InteractionState::Assigned as i32
                && interaction.offer_id == ix.offer_id
                && interaction.agent_id == ix.agent_id;
            still_assigned.then(|| assignment_event(tenant, interaction))
        }
        K::OfferTimedOut => Some(revoked(&ix.offer_id, "timed_out")),
        // The event says why: "abandoned" (the member left) or "session_lost".
        K::OfferRevoked => Some(revoked(&ix.offer_id, &ix.detail)),
        // Timeouts and lost sessions were revoked by the offer event before;
        // a rejecting agent knows. Anything else (a pending follow-up coming
        // due) takes back work the agent held.
        K::Requeued
            if !matches!(
                ix.detail.as_str(),
                "timed_out" | "rejected" | "session_lost"
            ) =>
        {
            Some(revoked("", "requeued"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(tenant: &str, offer_id: &str) -> v1::AgentSessionEvent {
        offer_event(tenant, offer_id, 0, v1::Interaction::default(), Vec::new())
    }

    fn offer_ids(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<String> {
        let mut ids = Vec::new();
        while let Ok(Ok(event)) = rx.try_recv() {
            match event.kind {
                Some(Kind::Offer(o)) => ids.push(o.offer_id),
                Some(Kind::Started(_)) => ids.push("started".into()),
                _ => ids.push("other".into()),
            }
        }
        ids
    }

    #[test]
    fn events_during_login_follow_the_start_without_duplicates() {
        let registry = SessionRegistry::default();
        let (tx, mut rx) = mpsc::channel(8);
        registry.register("t", "ana", "s1", tx, CancellationToken::new());
        assert_eq!(
            registry.deliver("t", "ana", None, offer("t", "o1")),
            Delivery::Sent
        );
        assert_eq!(
            registry.deliver("t", "ana", None, offer("t", "o2")),
            Delivery::Sent
        );
        assert!(offer_ids(&mut rx).is_empty(), "nothing before the start");
        let started = v1::AgentSessionEvent {
            kind: Some(Kind::Started(v1::SessionStarted::default())),
        };
        let tenant_agents = [("t".to_string(), "ana".to_string())];
        assert_eq!(
            registry.start(&tenant_agents, "s1", vec![started, offer("t", "o1")]),
            Delivery::Sent
        );
        assert_eq!(offer_ids(&mut rx), ["started", "o1", "o2"]);
        registry.deliver("t", "ana", None, offer("t", "o2"));
        assert!(offer_ids(&mut rx).is_empty(), "o2 was already sent");
    }

    #[test]
    fn a_client_that_stops_reading_is_cut_off() {
        let registry = SessionRegistry::default();
        let (tx, _rx) = mpsc::channel(2);
        let too_slow = CancellationToken::new();
        registry.register("t", "ana", "s1", tx, too_slow.clone());
        registry.start(&[("t".into(), "ana".into())], "s1", Vec::new());
        let sent: Vec<_> = (0..3)
            .map(|i| registry.deliver("t", "ana", None, offer("t", &format!("o{i}"))))
            .collect();
        assert_eq!(sent, [Delivery::Sent, Delivery::Sent, Delivery::TooSlow]);
        assert!(too_slow.is_cancelled());
    }

    #[test]
    fn only_the_current_session_unregisters() {
        let registry = SessionRegistry::default();
        let (tx, _rx) = mpsc::channel(2);
        registry.register("t", "ana", "old", tx.clone(), CancellationToken::new());
        registry.register("t", "ana", "new", tx, CancellationToken::new());
        registry.unregister("t", "ana", "old");
        assert!(registry.hosts("t", "ana"));
        assert_eq!(
            registry.deliver("t", "ana", Some("old"), offer("t", "o1")),
            Delivery::NotHosted
        );
        registry.unregister("t", "ana", "new");
        assert!(registry.is_empty());
    }
}
