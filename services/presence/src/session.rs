//! One agent session, from login to disconnect: authenticate each tenant,
//! start the routing session, then serve heartbeats, state changes and offer
//! answers until the client leaves, the session is replaced or expires, the
//! client falls behind, or the server shuts down. Whatever ends it, the agent
//! goes offline in every tenant the session still holds; a login that fails in
//! one tenant leaves the tenants already joined (one login, all or nothing).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use careline_bus::TenantDirectory;
use careline_domain::tenant::TenantConfig;
use careline_domain::{AgentId, OfferId, TenantId};
use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind as EventKind;
use careline_proto::v1::agent_session_request::Kind as RequestKind;
use careline_routing::{AgentStatus, RoutingError, RoutingStore};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::agents;
use crate::error::PresenceError;
use crate::sessions::{self, Delivery, Outgoing, SessionRegistry};

/// How long a new stream may take to send its login.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Login attempts one agent id may make a second, across every replica...
pub const LOGIN_ATTEMPTS_PER_SEC: u32 = 1;
/// ...and in a burst (a desktop reconnecting, a typo or two).
pub const LOGIN_ATTEMPTS_BURST: u32 = 10;
/// Most tenants one session may log in to.
pub const MAX_TENANTS_PER_SESSION: usize = 16;
/// Longest agent key accepted (before hashing).
pub const MAX_AGENT_KEY_LEN: usize = 512;
/// Longest away reason.
pub const MAX_AWAY_REASON_LEN: usize = 64;
/// How long the final error may wait for room in a full outgoing buffer.
const FINAL_SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Reason recorded when a session ends without the agent choosing OFFLINE.
const DISCONNECTED: &str = "disconnected";

/// What every session needs from its service.
#[derive(Clone)]
pub struct SessionContext {
    pub store: RoutingStore,
    pub tenants: Arc<TenantDirectory>,
    pub registry: SessionRegistry,
    pub shutdown: CancellationToken,
}

/// The agent as it is in one tenant of a session (an agent may log in to
/// several tenants at once, with a different id in each).
#[derive(Clone)]
struct TenantAgent {
    config: Arc<TenantConfig>,
    agent_id: String,
}

impl TenantAgent {
    fn tenant(&self) -> &str {
        &self.config.id
    }

    fn key(&self) -> (String, String) {
        (self.config.id.clone(), self.agent_id.clone())
    }
}

/// Runs one session: `inbound` is the client's requests (ending when the
/// client goes away), `tx` its outgoing events.
pub async fn run(
    ctx: SessionContext,
    mut inbound: impl Stream<Item = v1::AgentSessionRequest> + Unpin,
    tx: mpsc::Sender<Outgoing>,
) {
    let login = tokio::select! {
        _ = ctx.shutdown.cancelled() => Err(PresenceError::ShuttingDown),
        first = tokio::time::timeout(LOGIN_TIMEOUT, inbound.next()) => match first {
            Err(_) => Err(PresenceError::Invalid(format!("no login within {}s; send `login` first", LOGIN_TIMEOUT.as_secs()))),
            Ok(None) => return,
            Ok(Some(request)) => match admit_login(&ctx, &request).await {
                Ok(()) => validate_login(&ctx.tenants, request),
                Err(error) => Err(error),
            },
        },
    };
    let (tenant_agents, initial) = match login {
        Ok(login) => login,
        Err(error) => {
            let _ = tx.try_send(Err(error));
            return;
        }
    };
    let session_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("agent_session", session_id = %session_id);
    let mut session = Session {
        ctx,
        session_id,
        tenant_agents,
        tx,
        too_slow: CancellationToken::new(),
    };
    async move {
        let end = match session.start(initial).await {
            Ok(ttl) => session.serve(inbound, ttl).await,
            Err(error) => Some(error),
        };
        session.finish(end).await;
    }
    .instrument(span)
    .await;
}

/// Spends one login attempt of each agent id the login names in a known
/// tenant (a token bucket per agent id shared by every replica), before its
/// key is checked: guessing keys costs time, whichever replica is asked.
async fn admit_login(
    ctx: &SessionContext,
    request: &v1::AgentSessionRequest,
) -> Result<(), PresenceError> {
    let Some(RequestKind::Login(login)) = &request.kind else {
        return Ok(());
    };
    for entry in login.tenants.iter().take(MAX_TENANTS_PER_SESSION) {
        let (Ok(tenant), Ok(agent)) = (
            TenantId::new(entry.tenant_id.as_str()),
            AgentId::new(entry.agent_id.as_str()),
        ) else {
            continue;
        };
        if ctx.tenants.get(tenant.as_str()).is_none() {
            continue;
        }
        let wait = ctx
            .store
            .take_token(
                tenant.as_str(),
                &format!("login:{}", agent.as_str()),
                LOGIN_ATTEMPTS_PER_SEC,
                LOGIN_ATTEMPTS_BURST,
            )
            .await?;
        if let Some(wait) = wait {
            tracing::warn!(
                tenant = tenant.as_str(),
                agent_id = agent.as_str(),
                "agent login attempts over the limit"
            );
            return Err(PresenceError::TooManyLogins(format!(
                "too many login attempts for agent {} in tenant {}; retry in {} s",
                agent.as_str(),
                tenant.as_str(),
                wait.as_secs().max(1)
            )));
        }
    }
    Ok(())
}

/// Checks the login: every tenant known, agent configured, key right.
fn validate_login(
    tenants: &TenantDirectory,
    request: v1::AgentSessionRequest,
) -> Result<(Vec<TenantAgent>, AgentStatus), PresenceError> {
    let Some(RequestKind::Login(login)) = request.kind else {
        return Err(PresenceError::Invalid(
            "the first message of an agent session must be `login` (tenants with agent id and key)"
                .into(),
        ));
    };
    if login.tenants.is_empty() {
        return Err(PresenceError::Invalid(
            "login.tenants is empty; log in to at least one tenant".into(),
        ));
    }
    if login.tenants.len() > MAX_TENANTS_PER_SESSION {
        return Err(PresenceError::Invalid(format!(
            "login.tenants has {} entries; the limit is {MAX_TENANTS_PER_SESSION}",
            login.tenants.len()
        )));
    }
    let initial = match v1::AgentState::try_from(login.initial_state) {
        Ok(v1::AgentState::Unspecified | v1::AgentState::Away) => AgentStatus::Away,
        Ok(v1::AgentState::Available) => AgentStatus::Available,
        Ok(v1::AgentState::Offline) | Err(_) => {
            return Err(PresenceError::Invalid(
                "login.initial_state must be AVAILABLE or AWAY (UNSPECIFIED means AWAY)".into(),
            ));
        }
    };
    let mut seen = HashSet::new();
    let mut tenant_agents = Vec::with_capacity(login.tenants.len());
    for (i, entry) in login.tenants.iter().enumerate() {
        let tenant = TenantId::new(entry.tenant_id.as_str())
            .map_err(|e| PresenceError::Invalid(format!("login.tenants[{i}].tenant_id: {e}")))?;
        let agent = AgentId::new(entry.agent_id.as_str())
            .map_err(|e| PresenceError::Invalid(format!("login.tenants[{i}].agent_id: {e}")))?;
        if entry.agent_key.len() > MAX_AGENT_KEY_LEN {
            return Err(PresenceError::Invalid(format!(
                "login.tenants[{i}].agent_key is longer than {MAX_AGENT_KEY_LEN} bytes"
            )));
        }
        if !seen.insert(tenant.as_str().to_string()) {
            return Err(PresenceError::Invalid(format!(
                "login.tenants[{i}]: tenant {tenant} appears more than once; log in to each tenant once",
                tenant = tenant.as_str()
            )));
        }
        let config = tenants.get(tenant.as_str());
        let configured = config.as_ref().and_then(|c| c.agent(agent.as_str()));
        if !careline_kit::auth::agent_key_matches(configured, &entry.agent_key) {
            tracing::info!(
                tenant = tenant.as_str(),
                agent_id = agent.as_str(),
                "agent login refused"
            );
            return Err(PresenceError::Unauthenticated(format!(
                "invalid agent credentials for tenant {}",
                tenant.as_str()
            )));
        }
        let config = config.expect("a matching key implies a configured tenant");
        tenant_agents.push(TenantAgent {
            config,
            agent_id: agent.as_str().to_string(),
        });
    }
    Ok((tenant_agents, initial))
}

struct Session {
    ctx: SessionContext,
    session_id: String,
    /// Tenants the session still holds (OFFLINE in one removes it).
    tenant_agents: Vec<TenantAgent>,
    tx: mpsc::Sender<Outgoing>,
    too_slow: CancellationToken,
}

impl Session {
    /// Registers, logs in to every tenant and sends SessionStarted and the
    /// held interactions; returns the heartbeat TTL.
    async fn start(&mut self, initial: AgentStatus) -> Result<Duration, PresenceError> {
        let store = &self.ctx.store;
        for tenant_agent in &self.tenant_agents {
            self.ctx.registry.register(
                tenant_agent.tenant(),
                &tenant_agent.agent_id,
                &self.session_id,
                self.tx.clone(),
                self.too_slow.clone(),
            );
        }
        let mut held = Vec::new();
        for joined in 0..self.tenant_agents.len() {
            let tenant_agent = self.tenant_agents[joined].clone();
            match store
                .agent_login(
                    &tenant_agent.config,
                    &tenant_agent.agent_id,
                    &self.session_id,
                    initial,
                )
                .await
            {
                Ok(ids) => held.push((tenant_agent, ids)),
                Err(error) => {
                    // One login, all or nothing: the tenants not joined are unregistered
                    // here; `finish` logs the agent out of those already joined.
                    for not_joined in self.tenant_agents.split_off(joined) {
                        self.ctx.registry.unregister(
                            not_joined.tenant(),
                            &not_joined.agent_id,
                            &self.session_id,
                        );
                    }
                    tracing::info!(
                        tenant = tenant_agent.tenant(),
                        %error,
                        "agent login failed; leaving the tenants already joined"
                    );
                    return Err(error.into());
                }
            }
        }
        tracing::info!(tenants = self.tenant_agents.len(), "agent session started");
        let mut agents_now = Vec::with_capacity(self.tenant_agents.len());
        for tenant_agent in &self.tenant_agents {
            agents_now
                .push(agents::get(store, &tenant_agent.config, &tenant_agent.agent_id).await?);
        }
        let ttl_secs = self
            .tenant_agents
            .iter()
            .map(|m| m.config.routing.heartbeat_ttl_secs)
            .min()
            .unwrap_or(1)
            .max(1);
        let mut first = vec![v1::AgentSessionEvent {
            kind: Some(EventKind::Started(v1::SessionStarted {
                session_id: self.session_id.clone(),
                heartbeat_ttl_secs: ttl_secs,
                agents: agents_now,
            })),
        }];
        for (tenant_agent, ids) in held {
            for id in ids {
                if let Some(event) = self.held_event(&tenant_agent, &id).await? {
                    first.push(event);
                }
            }
        }
        let tenant_agents: Vec<_> = self.tenant_agents.iter().map(TenantAgent::key).collect();
        match self
            .ctx
            .registry
            .start(&tenant_agents, &self.session_id, first)
        {
            Delivery::TooSlow => Err(too_slow()),
            _ => Ok(Duration::from_secs(u64::from(ttl_secs))),
        }
    }

    /// The event re-sending an interaction the agent already holds.
    async fn held_event(
        &self,
        tenant_agent: &TenantAgent,
        id: &str,
    ) -> Result<Option<v1::AgentSessionEvent>, PresenceError> {
        let interaction = match self
            .ctx
            .store
            .get_interaction(tenant_agent.tenant(), id)
            .await
        {
            Ok(interaction) => interaction,
            Err(RoutingError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        if interaction.agent_id != tenant_agent.agent_id {
            return Ok(None);
        }
        Ok(match v1::InteractionState::try_from(interaction.state) {
            Ok(v1::InteractionState::Offered) => {
                let deadline_ms = interaction.offer_deadline_ms;
                let offer_id = interaction.offer_id.clone();
                Some(
                    sessions::offer_with_history(
                        &self.ctx.store,
                        tenant_agent.tenant(),
                        &offer_id,
                        deadline_ms,
                        interaction,
                    )
                    .await,
                )
            }
            Ok(v1::InteractionState::Assigned) => Some(sessions::assignment_event(
                tenant_agent.tenant(),
                interaction,
            )),
            _ => None,
        })
    }

    /// Serves requests until the session ends; returns the error to end the
    /// stream with, or `None` for a quiet end (client left, agent went offline).
    async fn serve(
        &mut self,
        mut inbound: impl Stream<Item = v1::AgentSessionRequest> + Unpin,
        ttl: Duration,
    ) -> Option<PresenceError> {
        let mut last_heartbeat = Instant::now();
        loop {
            let request = tokio::select! {
                _ = self.ctx.shutdown.cancelled() => return Some(PresenceError::ShuttingDown),
                _ = self.too_slow.cancelled() => return Some(too_slow()),
                _ = self.tx.closed() => return None,
                _ = tokio::time::sleep_until(last_heartbeat + ttl) => {
                    tracing::info!("agent session expired: no heartbeat");
                    return Some(PresenceError::SessionEnded(format!(
                        "no heartbeat for {}s; the session ended. Log in again and send heartbeats at least every heartbeat_ttl_secs / 3",
                        ttl.as_secs()
                    )));
                }
                request = inbound.next() => request,
            };
            let request = request?;
            let outcome = match request.kind {
                Some(RequestKind::Heartbeat(_)) => {
                    last_heartbeat = Instant::now();
                    self.heartbeat().await
                }
                Some(RequestKind::SetState(set)) => self.set_state(set).await,
                Some(RequestKind::Accept(answer)) => self.accept(answer).await,
                Some(RequestKind::Reject(answer)) => self.reject(answer).await,
                Some(RequestKind::Login(_)) => Err(PresenceError::Invalid(
                    "already logged in; open a new session to log in again".into(),
                )),
                None => Err(PresenceError::Invalid(
                    "empty request: set one of set_state, heartbeat, accept or reject".into(),
                )),
            };
            match outcome {
                Ok(()) if self.tenant_agents.is_empty() => return None,
                Ok(()) => {}
                Err(error) => {
                    let ends = matches!(error, PresenceError::SessionEnded(_));
                    if let Err(too_slow) = self.reply(notice(&error)) {
                        return Some(too_slow);
                    }
                    if ends {
                        return Some(error);
                    }
                }
            }
        }
    }

    /// Sends a reply on the stream; a full buffer means the client is too slow.
    fn reply(&self, event: v1::AgentSessionEvent) -> Result<(), PresenceError> {
        match self.tx.try_send(Ok(event)) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(too_slow()),
        }
    }

    /// Keeps the session alive, and re-sends any offer or assignment the
    /// agent holds that this session has not delivered (its bus event was
    /// missed, e.g. while NATS reconnected).
    async fn heartbeat(&self) -> Result<(), PresenceError> {
        for tenant_agent in &self.tenant_agents {
            let held = self
                .ctx
                .store
                .agent_heartbeat(
                    tenant_agent.tenant(),
                    &tenant_agent.agent_id,
                    &self.session_id,
                )
                .await
                .map_err(session_error)?;
            for item in held {
                let delivered = self.ctx.registry.was_delivered(
                    tenant_agent.tenant(),
                    &tenant_agent.agent_id,
                    &self.session_id,
                    &sessions::held_key(&item),
                );
                if delivered {
                    continue;
                }
                if let Some(event) = self.held_event(tenant_agent, &item.interaction_id).await? {
                    let sent = self.ctx.registry.deliver(
                        tenant_agent.tenant(),
                        &tenant_agent.agent_id,
                        Some(&self.session_id),
                        event,
                    );
                    if sent == Delivery::TooSlow {
                        return Err(too_slow());
                    }
                }
            }
        }
        Ok(())
    }

    async fn set_state(&mut self, set: v1::SetState) -> Result<(), PresenceError> {
        let status = match v1::AgentState::try_from(set.state) {
            Ok(v1::AgentState::Available) => AgentStatus::Available,
            Ok(v1::AgentState::Away) => AgentStatus::Away,
            Ok(v1::AgentState::Offline) => AgentStatus::Offline,
            _ => {
                return Err(PresenceError::Invalid(
                    "set_state.state must be AVAILABLE, AWAY or OFFLINE".into(),
                ));
            }
        };
        if set.away_reason.len() > MAX_AWAY_REASON_LEN
            || set
                .away_reason
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' ')))
        {
            return Err(PresenceError::Invalid(format!(
                "set_state.away_reason: at most {MAX_AWAY_REASON_LEN} letters, digits, spaces, '_' or '-'"
            )));
        }
        let reason = match status {
            AgentStatus::Available => "",
            AgentStatus::Offline if set.away_reason.is_empty() => "logged_out",
            _ => set.away_reason.as_str(),
        };
        let targets: Vec<TenantAgent> = if set.tenant_id.is_empty() {
            self.tenant_agents.clone()
        } else {
            vec![
                self.tenant_agent("set_state.tenant_id", &set.tenant_id)?
                    .clone(),
            ]
        };
        for tenant_agent in &targets {
            self.ctx
                .store
                .agent_set_state(
                    tenant_agent.tenant(),
                    &tenant_agent.agent_id,
                    &self.session_id,
                    status,
                    reason,
                )
                .await
                .map_err(session_error)?;
            if status == AgentStatus::Offline {
                self.ctx.registry.unregister(
                    tenant_agent.tenant(),
                    &tenant_agent.agent_id,
                    &self.session_id,
                );
                self.tenant_agents
                    .retain(|m| m.tenant() != tenant_agent.tenant());
            }
        }
        Ok(())
    }

    async fn accept(&self, answer: v1::OfferAnswer) -> Result<(), PresenceError> {
        let (tenant_agent, offer) = self.answer(&answer)?;
        let id = self
            .ctx
            .store
            .accept_offer(tenant_agent.tenant(), &offer, &tenant_agent.agent_id)
            .await?;
        tracing::info!(tenant = tenant_agent.tenant(), interaction_id = %id, "offer accepted");
        let interaction = self
            .ctx
            .store
            .get_interaction(tenant_agent.tenant(), &id)
            .await?;
        let event = sessions::assignment_event(tenant_agent.tenant(), interaction);
        match self.ctx.registry.deliver(
            tenant_agent.tenant(),
            &tenant_agent.agent_id,
            Some(&self.session_id),
            event,
        ) {
            Delivery::TooSlow => Err(too_slow()),
            _ => Ok(()),
        }
    }

    async fn reject(&self, answer: v1::OfferAnswer) -> Result<(), PresenceError> {
        let (tenant_agent, offer) = self.answer(&answer)?;
        let id = self
            .ctx
            .store
            .reject_offer(tenant_agent.tenant(), &offer, &tenant_agent.agent_id)
            .await?;
        tracing::info!(tenant = tenant_agent.tenant(), interaction_id = %id, "offer rejected");
        Ok(())
    }

    fn answer(&self, answer: &v1::OfferAnswer) -> Result<(&TenantAgent, String), PresenceError> {
        let tenant_agent = self.tenant_agent("tenant_id", &answer.tenant_id)?;
        let offer = OfferId::new(answer.offer_id.as_str())
            .map_err(|e| PresenceError::Invalid(format!("offer_id: {e}")))?;
        Ok((tenant_agent, offer.as_str().to_string()))
    }

    fn tenant_agent(&self, field: &str, tenant: &str) -> Result<&TenantAgent, PresenceError> {
        self.tenant_agents
            .iter()
            .find(|m| m.tenant() == tenant)
            .ok_or_else(|| {
                let held: Vec<&str> = self.tenant_agents.iter().map(TenantAgent::tenant).collect();
                PresenceError::Invalid(format!(
                    "{field}: \"{tenant}\" is not a tenant of this session; its tenants are: {}",
                    held.join(", ")
                ))
            })
    }

    /// Takes the agent offline where this session is still the current one,
    /// unregisters, and ends the stream with `end` if given.
    async fn finish(self, end: Option<PresenceError>) {
        for tenant_agent in &self.tenant_agents {
            self.ctx.registry.unregister(
                tenant_agent.tenant(),
                &tenant_agent.agent_id,
                &self.session_id,
            );
            let offline = self
                .ctx
                .store
                .agent_set_state(
                    tenant_agent.tenant(),
                    &tenant_agent.agent_id,
                    &self.session_id,
                    AgentStatus::Offline,
                    DISCONNECTED,
                )
                .await;
            match offline {
                Ok(()) => {
                    tracing::info!(tenant = tenant_agent.tenant(), agent_id = %tenant_agent.agent_id, "agent session ended")
                }
                // Already ended (expired or replaced by a newer login): nothing to undo.
                Err(RoutingError::FailedPrecondition(_)) => {}
                Err(error) => {
                    tracing::warn!(tenant = tenant_agent.tenant(), %error, "could not take the agent offline; its heartbeat timer will")
                }
            }
        }
        if let Some(error) = end {
            tracing::info!(code = ?error.code(), "agent session closed with an error");
            let _ = self.tx.send_timeout(Err(error), FINAL_SEND_TIMEOUT).await;
        }
    }
}

/// Heartbeat and state changes failing their precondition mean the routing
/// session is over (expired or replaced).
fn session_error(error: RoutingError) -> PresenceError {
    match error {
        RoutingError::FailedPrecondition(message) => PresenceError::SessionEnded(message),
        other => other.into(),
    }
}

fn too_slow() -> PresenceError {
    PresenceError::TooSlow(format!(
        "the client did not read its events ({} buffered); the session ended, reconnect and read the stream continuously",
        sessions::SESSION_BUFFER
    ))
}

fn notice(error: &PresenceError) -> v1::AgentSessionEvent {
    v1::AgentSessionEvent {
        kind: Some(EventKind::Error(v1::ErrorNotice {
            code: error.code() as i32,
            message: error.client_message(),
        })),
    }
}
