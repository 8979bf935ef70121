//! One agent's `ChatSession` stream: login with the agent key (as in
//! presence), then the chats the router assigned to the agent, joined one by
//! one up to the agent's chat capacity. Each joined chat's feed is followed
//! here: the member's messages, typing and read notices go to the agent;
//! another agent joining (a warm transfer) or the chat closing takes it off
//! this stream.

use std::collections::HashMap;
use std::sync::Arc;

use careline_domain::tenant::TenantConfig;
use careline_proto::v1;
use careline_proto::v1::chat_session_event::Kind as EventKind;
use careline_proto::v1::chat_session_request::Kind as RequestKind;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::StreamMap;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::Instrument;

use crate::chats::{self, ChatRef, Chats};
use crate::error::ChatError;
use crate::feed::{self, FeedItem};
use crate::limits::{LOGIN_TIMEOUT, MAX_AGENT_KEY_BYTES, MAX_FIRST_NAME_CHARS};
use crate::protocol::{self, Party};
use crate::transcript::{Entry, EntryKind, NewEntry};

/// What the stream sends: an event, or the status ending it.
pub type Outgoing = Result<v1::ChatSessionEvent, Status>;

/// A logged-in agent.
struct AgentLogin {
    tenant: Arc<TenantConfig>,
    agent_id: String,
    first_name: String,
    capacity: u32,
}

/// A chat joined on this stream and the last entry the agent has.
struct Joined {
    chat: ChatRef,
    seen: Option<String>,
}

/// Runs one agent stream until the agent hangs up, the gateway shuts down or
/// the agent stops reading.
pub async fn run(
    chats: Arc<Chats>,
    mut inbound: impl Stream<Item = Result<v1::ChatSessionRequest, Status>> + Unpin,
    tx: mpsc::Sender<Outgoing>,
    shutdown: CancellationToken,
) {
    let login = tokio::select! {
        _ = shutdown.cancelled() => Err(ChatError::ShuttingDown),
        first = tokio::time::timeout(LOGIN_TIMEOUT, inbound.next()) => match first {
            Err(_) => Err(ChatError::Invalid(format!(
                "no login within {}s; send `login` first", LOGIN_TIMEOUT.as_secs()
            ))),
            Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(request))) => login(&chats, request),
        },
    };
    let login = match login {
        Ok(login) => login,
        Err(error) => {
            let _ = tx.try_send(Err(error.into()));
            return;
        }
    };
    let session_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!(
        "chat_session",
        session_id = %session_id,
        tenant = login.tenant.id.as_str(),
        agent_id = login.agent_id.as_str()
    );
    let mut session = Session {
        chats,
        login,
        tx,
        joined: HashMap::new(),
        feeds: StreamMap::new(),
    };
    async move {
        tracing::info!("agent chat session started");
        if !session.event(EventKind::Started(v1::ChatSessionStarted {
            session_id,
            chat_capacity: session.login.capacity,
        })) {
            return;
        }
        session.serve(inbound, shutdown).await;
        tracing::info!(chats = session.joined.len(), "agent chat session ended");
    }
    .instrument(span)
    .await;
}

fn login(chats: &Chats, request: v1::ChatSessionRequest) -> Result<AgentLogin, ChatError> {
    let Some(RequestKind::Login(login)) = request.kind else {
        return Err(ChatError::Invalid(
            "the first message of a chat session must be `login` (tenant, agent id and key)".into(),
        ));
    };
    if login.agent_key.len() > MAX_AGENT_KEY_BYTES {
        return Err(ChatError::Invalid(format!(
            "login.agent_key is longer than {MAX_AGENT_KEY_BYTES} bytes"
        )));
    }
    if login.first_name.chars().count() > MAX_FIRST_NAME_CHARS {
        return Err(ChatError::Invalid(format!(
            "login.first_name is longer than {MAX_FIRST_NAME_CHARS} characters"
        )));
    }
    let tenant = chats.tenants.get(&login.tenant_id);
    let agent = tenant.as_ref().and_then(|t| t.agent(&login.agent_id));
    if !careline_kit::auth::agent_key_matches(agent, &login.agent_key) {
        tracing::info!(
            tenant = login.tenant_id.as_str(),
            agent_id = login.agent_id.as_str(),
            "agent chat login refused"
        );
        return Err(ChatError::Unauthenticated(format!(
            "invalid agent credentials for tenant {}",
            login.tenant_id
        )));
    }
    let agent = agent.expect("a matching key implies a configured agent");
    let capacity = tenant
        .as_ref()
        .expect("a matching key implies a configured tenant")
        .agent_capacity(agent)
        .chat;
    Ok(AgentLogin {
        tenant: tenant.expect("a matching key implies a configured tenant"),
        agent_id: login.agent_id,
        first_name: login.first_name,
        capacity,
    })
}

struct Session {
    chats: Arc<Chats>,
    login: AgentLogin,
    tx: mpsc::Sender<Outgoing>,
    joined: HashMap<String, Joined>,
    feeds: StreamMap<String, async_nats::Subscriber>,
}

/// The transcript entry as the agent sees it.
pub fn entry_proto(ix: &str, entry: &Entry) -> v1::TranscriptEntry {
    v1::TranscriptEntry {
        id: entry.id.clone(),
        interaction_id: ix.to_owned(),
        kind: match entry.kind {
            EntryKind::Message => v1::TranscriptEntryKind::Message,
            EntryKind::Assigned => v1::TranscriptEntryKind::Assigned,
            EntryKind::Closed => v1::TranscriptEntryKind::Closed,
        } as i32,
        from: match entry.from {
            Party::Member => v1::ChatParty::Member,
            Party::Agent => v1::ChatParty::Agent,
            Party::System => v1::ChatParty::System,
        } as i32,
        agent_id: entry.agent_id.clone(),
        agent_first_name: entry.agent_first_name.clone(),
        text: entry.text.clone(),
        client_id: entry.client_id.clone(),
        reason: entry.reason.clone(),
        at_ms: entry.at_ms(),
    }
}

impl Session {
    /// Queues an event; false when the agent is too slow (the stream then ends).
    fn event(&self, kind: EventKind) -> bool {
        match self
            .tx
            .try_send(Ok(v1::ChatSessionEvent { kind: Some(kind) }))
        {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("agent chat stream too slow; ending it");
                let _ = self.tx.try_send(Err(Status::resource_exhausted(
                    "you are not reading the chat stream; reconnect and join your chats again",
                )));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn error(&self, error: ChatError, ix: &str, client_id: &str) -> bool {
        let status = Status::from(error);
        self.event(EventKind::Error(v1::ChatError {
            code: status.code() as i32,
            message: status.message().to_owned(),
            interaction_id: ix.to_owned(),
            client_id: client_id.to_owned(),
        }))
    }

    async fn serve(
        &mut self,
        mut inbound: impl Stream<Item = Result<v1::ChatSessionRequest, Status>> + Unpin,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = self.tx.try_send(Err(ChatError::ShuttingDown.into()));
                    return;
                }
                _ = self.tx.closed() => return,
                request = inbound.next() => {
                    let Some(Ok(request)) = request else { return };
                    if !self.request(request).await {
                        return;
                    }
                }
                Some((ix, message)) = self.feeds.next(), if !self.feeds.is_empty() => {
                    if !self.forward(&ix, feed::decode(&message)) {
                        return;
                    }
                }
            }
        }
    }

    /// Handles one request; false ends the stream.
    async fn request(&mut self, request: v1::ChatSessionRequest) -> bool {
        let (ix, client_id, result) = match request.kind {
            Some(RequestKind::Join(join)) => {
                let result = self.join(&join.interaction_id).await;
                (join.interaction_id, String::new(), result)
            }
            Some(RequestKind::Send(send)) => {
                let result = self.send(&send).await;
                (send.interaction_id, send.client_id, result)
            }
            Some(RequestKind::Typing(typing)) => {
                let result = match self.chat(&typing.interaction_id) {
                    Ok(chat) => {
                        self.chats
                            .notice(&chat, FeedItem::Typing { from: Party::Agent })
                            .await;
                        Ok(true)
                    }
                    Err(error) => Err(error),
                };
                (typing.interaction_id, String::new(), result)
            }
            Some(RequestKind::Read(read)) => {
                let result = match (
                    self.chat(&read.interaction_id),
                    protocol::is_entry_id(&read.up_to),
                ) {
                    (Ok(chat), true) => {
                        self.chats
                            .notice(
                                &chat,
                                FeedItem::Read {
                                    from: Party::Agent,
                                    up_to: read.up_to.clone(),
                                },
                            )
                            .await;
                        Ok(true)
                    }
                    (Ok(_), false) => Err(ChatError::Invalid(
                        "read.up_to must be a transcript entry id".into(),
                    )),
                    (Err(error), _) => Err(error),
                };
                (read.interaction_id, String::new(), result)
            }
            Some(RequestKind::End(end)) => {
                let result = self.end(&end).await;
                (end.interaction_id, String::new(), result)
            }
            Some(RequestKind::Login(_)) => (
                String::new(),
                String::new(),
                Err(ChatError::Invalid("already logged in".into())),
            ),
            None => (
                String::new(),
                String::new(),
                Err(ChatError::Invalid(
                    "empty request: set one of its fields".into(),
                )),
            ),
        };
        match result {
            Ok(alive) => alive,
            Err(error) => self.error(error, &ix, &client_id),
        }
    }

    fn chat(&self, ix: &str) -> Result<ChatRef, ChatError> {
        self.joined
            .get(ix)
            .map(|joined| joined.chat.clone())
            .ok_or_else(|| ChatError::NotJoined(ix.to_owned()))
    }

    /// Checks with the router that this agent holds the chat now.
    async fn held(&self, ix: &str) -> Result<v1::Interaction, ChatError> {
        let interaction = self.chats.router.get(&self.login.tenant.id, ix).await?;
        if interaction.channel != v1::Channel::Chat as i32 {
            return Err(ChatError::NotChat(ix.to_owned()));
        }
        if interaction.state != v1::InteractionState::Assigned as i32
            || interaction.agent_id != self.login.agent_id
        {
            return Err(ChatError::NotHolder(ix.to_owned()));
        }
        Ok(interaction)
    }

    async fn join(&mut self, ix: &str) -> Result<bool, ChatError> {
        if careline_domain::InteractionId::new(ix).is_err() {
            return Err(ChatError::Invalid(format!(
                "join.interaction_id {ix:?} is not an interaction id"
            )));
        }
        if !self.joined.contains_key(ix) && self.joined.len() >= self.login.capacity as usize {
            return Err(ChatError::AtCapacity(self.login.capacity));
        }
        let interaction = self.held(ix).await?;
        let tenant = &self.login.tenant;
        let meta = self
            .chats
            .store
            .meta(&tenant.id, ix)
            .await?
            .ok_or_else(|| ChatError::NotFound(ix.to_owned()))?;
        if meta.closed {
            return Err(ChatError::Closed);
        }
        let chat = ChatRef {
            tenant: tenant.clone(),
            ix: ix.to_owned(),
        };
        let feed = self.chats.feed.subscribe(&tenant.id, ix).await?;
        self.chats
            .append(
                &chat,
                NewEntry::assigned(
                    &self.login.agent_id,
                    &self.login.first_name,
                    &interaction.offer_id,
                ),
            )
            .await?;
        let transcript = self.chats.store.entries(&tenant.id, ix, None).await?;
        let seen = transcript.last().map(|e| e.id.clone());
        self.feeds.insert(ix.to_owned(), feed);
        self.joined.insert(ix.to_owned(), Joined { chat, seen });
        tracing::info!(interaction_id = ix, "agent joined chat");
        Ok(self.event(EventKind::Joined(v1::ChatJoined {
            interaction_id: ix.to_owned(),
            language: interaction.language,
            topic: meta.topic,
            member_first_name: meta.first_name,
            transcript: transcript.iter().map(|e| entry_proto(ix, e)).collect(),
        })))
    }

    async fn send(&mut self, send: &v1::ChatSend) -> Result<bool, ChatError> {
        let chat = self.chat(&send.interaction_id)?;
        protocol::check_message("send", &send.client_id, &send.text)?;
        match self
            .chats
            .say(&chat, Party::Agent, &send.client_id, &send.text)
            .await?
        {
            // A resent message: acknowledge it again as first stored.
            Some(entry) => Ok(self.event(EventKind::Entry(entry_proto(&chat.ix, &entry)))),
            None => Ok(true),
        }
    }

    async fn end(&mut self, end: &v1::ChatEnd) -> Result<bool, ChatError> {
        let chat = self.chat(&end.interaction_id)?;
        if let Err(error) = self.held(&chat.ix).await {
            if matches!(error, ChatError::NotHolder(_)) {
                self.leave(&chat.ix, "transferred");
            }
            return Err(error);
        }
        let disposition = if end.disposition.is_empty() {
            chats::reason::AGENT_ENDED
        } else {
            end.disposition.as_str()
        };
        self.chats
            .close(&chat, chats::reason::AGENT_ENDED, disposition)
            .await?;
        Ok(true)
    }

    /// Takes a chat off this stream and tells the agent why.
    fn leave(&mut self, ix: &str, reason: &str) -> bool {
        self.feeds.remove(ix);
        if self.joined.remove(ix).is_none() {
            return true;
        }
        tracing::info!(interaction_id = ix, reason, "agent left chat");
        self.event(EventKind::Left(v1::ChatLeft {
            interaction_id: ix.to_owned(),
            reason: reason.to_owned(),
        }))
    }

    /// Sends a feed item of chat `ix` to the agent; false ends the stream.
    fn forward(&mut self, ix: &str, item: Option<FeedItem>) -> bool {
        let Some(joined) = self.joined.get_mut(ix) else {
            return true;
        };
        match item {
            Some(FeedItem::Entry(entry)) => {
                if !chats::is_after(&entry.id, joined.seen.as_deref()) {
                    return true;
                }
                joined.seen = Some(entry.id.clone());
                match entry.kind {
                    EntryKind::Assigned if entry.agent_id != self.login.agent_id => {
                        self.leave(ix, "transferred")
                    }
                    EntryKind::Closed => {
                        self.event(EventKind::Entry(entry_proto(ix, &entry)))
                            && self.leave(ix, &entry.reason)
                    }
                    _ => self.event(EventKind::Entry(entry_proto(ix, &entry))),
                }
            }
            Some(FeedItem::Typing {
                from: Party::Member,
            }) => self.event(EventKind::Typing(v1::ChatActivity {
                interaction_id: ix.to_owned(),
                up_to: String::new(),
            })),
            Some(FeedItem::Read {
                from: Party::Member,
                up_to,
            }) => self.event(EventKind::Read(v1::ChatActivity {
                interaction_id: ix.to_owned(),
                up_to,
            })),
            _ => true,
        }
    }
}
