//! [`Chats`]: the chat core, knowing nothing of WebSockets or gRPC. It starts
//! a chat (widget key -> tenant, origin check, interaction at the router,
//! transcript), resumes one with its token, appends member and agent messages
//! once per client id, closes chats and settles them at the router, and sweeps
//! chats whose member did not come back within the resume grace.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Subscriber;
use careline_bus::TenantDirectory;
use careline_domain::tenant::{ChatWidget, TenantConfig};
use careline_proto::v1;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ChatError;
use crate::feed::{Feed, FeedItem};
use crate::limits::{SETTLE_RETRY, SWEEP_BATCH};
use crate::protocol::{Party, ServerFrame, Start};
use crate::router::RouterGateway;
use crate::transcript::{Appended, ChatMeta, ChatStore, Entry, EntryKind, NewEntry};

/// Version prefix of resume tokens: `rt1.<tenant>.<interaction id>.<secret>`.
const TOKEN_PREFIX: &str = "rt1";
/// Random bytes of a resume token's secret.
const TOKEN_SECRET_BYTES: usize = 32;
/// Client id of the one `closed` entry of a chat (a second close is a no-op).
const CLOSED_CLIENT_ID: &str = "closed";

/// The emergency guidance shown when the first message looks urgent.
const EMERGENCY_EN: &str =
    "If this is a medical emergency, call 911 now. If you are in crisis, call or text 988.";
/// [`EMERGENCY_EN`] in Spanish.
const EMERGENCY_ES: &str = "Si es una emergencia médica, llame al 911 ahora. Si está en crisis, llame o envíe un mensaje de texto al 988.";

/// Why a chat closed (`closed.reason`, and the disposition it is settled with).
pub mod reason {
    /// The member ended the chat.
    pub const MEMBER_ENDED: &str = "member_ended";
    /// The agent ended the chat.
    pub const AGENT_ENDED: &str = "agent_ended";
    /// The member did not come back within the resume grace.
    pub const ABANDONED: &str = "abandoned";
}

/// A chat of a tenant.
#[derive(Debug, Clone)]
pub struct ChatRef {
    pub tenant: Arc<TenantConfig>,
    pub ix: String,
}

/// A member attached to a chat: what to send first, the live feed, and the
/// last transcript entry already sent (live entries up to it are duplicates).
#[derive(Debug)]
pub struct Attached {
    pub chat: ChatRef,
    pub frames: Vec<ServerFrame>,
    pub feed: Subscriber,
    pub seen: Option<String>,
    /// The chat was already over: send `frames` and close.
    pub closed: bool,
}

/// The chat core; shared by every connection of a replica.
#[derive(Debug)]
pub struct Chats {
    pub store: ChatStore,
    pub feed: Feed,
    pub router: RouterGateway,
    pub tenants: Arc<TenantDirectory>,
    pub resume_grace: Duration,
    /// Whether campaigns is configured, so a closed widget may offer a call-back.
    pub callbacks: bool,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Retention of a tenant's chat keys.
pub fn retention(tenant: &TenantConfig) -> Duration {
    Duration::from_secs(u64::from(tenant.chat.retention_days) * 24 * 3600)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Compares two transcript entry ids (`<ms>-<seq>`) in transcript order.
pub fn entry_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |id: &str| {
        id.split_once('-')
            .and_then(|(ms, seq)| Some((ms.parse::<u64>().ok()?, seq.parse::<u64>().ok()?)))
            .unwrap_or_default()
    };
    parse(a).cmp(&parse(b))
}

/// Whether a live entry `id` is new to a reader that has seen up to `seen`.
pub fn is_after(id: &str, seen: Option<&str>) -> bool {
    seen.is_none_or(|seen| entry_order(id, seen).is_gt())
}

/// The member frame showing `entry`.
pub fn member_frame(entry: &Entry) -> ServerFrame {
    match entry.kind {
        EntryKind::Message => ServerFrame::Message {
            id: entry.id.clone(),
            from: entry.from,
            text: entry.text.clone(),
            client_id: (entry.from == Party::Member).then(|| entry.client_id.clone()),
            at_ms: entry.at_ms(),
        },
        EntryKind::Assigned => ServerFrame::Assigned {
            agent_first_name: entry.agent_first_name.clone(),
        },
        EntryKind::Closed => ServerFrame::Closed {
            reason: entry.reason.clone(),
        },
    }
}

fn language_of(language: i32) -> careline_domain::Language {
    match v1::Language::try_from(language) {
        Ok(v1::Language::Es) => careline_domain::Language::Es,
        _ => careline_domain::Language::En,
    }
}

fn language_proto(code: Option<&str>) -> v1::Language {
    match code {
        Some("en") => v1::Language::En,
        Some("es") => v1::Language::Es,
        _ => v1::Language::Unspecified,
    }
}

impl Chats {
    /// Whether `tenant`'s members are offered a call-back when chat is closed: campaigns is
    /// configured, the tenant has a call-back campaign and the gateway has its key.
    pub fn offers_callback(&self, tenant: &TenantConfig) -> bool {
        self.callbacks
            && self.router.serves(&tenant.id)
            && tenant.outreach.campaigns.iter().any(|c| c.callback)
    }

    /// The tenant and widget of a widget key, if exactly one tenant has it.
    pub fn widget(&self, key: &str) -> Option<(Arc<TenantConfig>, ChatWidget)> {
        let mut found = self.tenants.tenant_ids().into_iter().filter_map(|id| {
            let tenant = self.tenants.get(&id)?;
            let widget = tenant.chat_widget(key)?.clone();
            Some((tenant, widget))
        });
        let first = found.next()?;
        if let Some((other, _)) = found.next() {
            tracing::warn!(
                tenant = first.0.id.as_str(),
                other = other.id.as_str(),
                "two tenants configure the same chat widget key; refusing it"
            );
            return None;
        }
        Some(first)
    }

    /// Starts a chat: an interaction at the router with the first message as
    /// its text (the router detects language and urgency there), the chat's
    /// keys, the first transcript entry.
    pub async fn start(&self, origin: Option<&str>, start: Start) -> Result<Attached, ChatError> {
        let (tenant, widget) = self.widget(&start.key).ok_or(ChatError::UnknownWidget)?;
        if !widget.allows_origin(origin) {
            tracing::info!(
                tenant = tenant.id.as_str(),
                "chat refused: origin not allowed"
            );
            return Err(ChatError::OriginNotAllowed);
        }
        if !self.router.serves(&tenant.id) {
            return Err(ChatError::NoRouterKey(tenant.id.clone()));
        }
        let conversation = uuid::Uuid::now_v7().simple().to_string();
        let created = self
            .router
            .create(&tenant.id, create_request(&tenant, &start, &conversation))
            .await?;
        let interaction = created.interaction.unwrap_or_default();
        let chat = ChatRef {
            tenant: tenant.clone(),
            ix: interaction.id.clone(),
        };
        let mut secret = [0u8; TOKEN_SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        let secret = hex::encode(secret);
        let token = format!("{TOKEN_PREFIX}.{}.{}.{secret}", tenant.id, chat.ix);
        let meta = ChatMeta {
            widget_key: widget.key.clone(),
            token_sha256: sha256_hex(&secret),
            language: language_of(interaction.language).as_str().to_owned(),
            topic: start.topic.clone().unwrap_or_default(),
            first_name: start.first_name.clone().unwrap_or_default(),
            ..ChatMeta::default()
        };
        self.store
            .create(&tenant.id, &chat.ix, &meta, retention(&tenant))
            .await?;
        let feed = self.feed.subscribe(&tenant.id, &chat.ix).await?;
        self.lease(&chat).await?;
        self.append(
            &chat,
            NewEntry::message(Party::Member, &start.client_id, &start.text),
        )
        .await?;
        tracing::info!(
            tenant = tenant.id.as_str(),
            interaction_id = chat.ix.as_str(),
            urgent = interaction.urgent,
            after_hours = interaction.after_hours,
            "chat started"
        );
        metrics::counter!("careline_chat_started_total", "tenant" => tenant.id.clone())
            .increment(1);
        let mut frames = vec![ServerFrame::Started {
            conversation_id: chat.ix.clone(),
            resume_token: token,
            resume_grace_secs: self.resume_grace.as_secs(),
            resumed: false,
        }];
        if interaction.urgent {
            let language = language_of(interaction.language);
            frames.push(ServerFrame::Emergency {
                reason: interaction.urgent_reason.clone(),
                language: language.as_str().to_owned(),
                message: match language {
                    careline_domain::Language::Es => EMERGENCY_ES,
                    careline_domain::Language::En => EMERGENCY_EN,
                }
                .to_owned(),
                call: "911".to_owned(),
                crisis_line: "988".to_owned(),
            });
        }
        if interaction.after_hours {
            frames.push(ServerFrame::AfterHours {
                message: tenant
                    .after_hours_message(language_of(interaction.language))
                    .to_owned(),
                contact_email: tenant.contact_email.clone(),
                portal_url: tenant.portal_url.clone(),
                callback: self.offers_callback(&tenant),
            });
        }
        frames.push(ServerFrame::Queued {
            position: (created.queue_position > 0).then_some(created.queue_position),
            eta_seconds: None,
        });
        Ok(Attached {
            chat,
            frames,
            feed,
            seen: None,
            closed: false,
        })
    }

    /// Reattaches a member to a chat with its resume token: the entries after
    /// `after`, then the chat's state.
    pub async fn resume(
        &self,
        origin: Option<&str>,
        token: &str,
        after: Option<&str>,
    ) -> Result<Attached, ChatError> {
        let mut parts = token.splitn(4, '.');
        let (Some(TOKEN_PREFIX), Some(tenant_id), Some(ix), Some(secret)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ChatError::ResumeFailed);
        };
        let tenant = self.tenants.get(tenant_id).ok_or(ChatError::ResumeFailed)?;
        let meta = self
            .store
            .meta(&tenant.id, ix)
            .await?
            .ok_or(ChatError::ResumeFailed)?;
        let presented = sha256_hex(secret);
        if !careline_domain::secret::constant_time_eq(
            presented.as_bytes(),
            meta.token_sha256.as_bytes(),
        ) {
            return Err(ChatError::ResumeFailed);
        }
        let widget = tenant
            .chat_widget(&meta.widget_key)
            .ok_or(ChatError::ResumeFailed)?;
        if !widget.allows_origin(origin) {
            return Err(ChatError::OriginNotAllowed);
        }
        let chat = ChatRef {
            tenant: tenant.clone(),
            ix: ix.to_owned(),
        };
        let feed = self.feed.subscribe(&tenant.id, ix).await?;
        if !meta.closed {
            self.lease(&chat).await?;
        }
        let entries = self.store.entries(&tenant.id, ix, after).await?;
        let mut frames = vec![ServerFrame::Started {
            conversation_id: chat.ix.clone(),
            resume_token: token.to_owned(),
            resume_grace_secs: self.resume_grace.as_secs(),
            resumed: true,
        }];
        frames.extend(entries.iter().map(member_frame));
        let closed = meta.closed || entries.iter().any(|e| e.kind == EntryKind::Closed);
        if !closed {
            frames.push(if meta.agent_id.is_empty() {
                ServerFrame::Queued {
                    position: None,
                    eta_seconds: None,
                }
            } else {
                ServerFrame::Assigned {
                    agent_first_name: meta.agent_first_name.clone(),
                }
            });
        } else if !entries.iter().any(|e| e.kind == EntryKind::Closed) {
            frames.push(ServerFrame::Closed {
                reason: meta.closed_reason.clone(),
            });
        }
        tracing::info!(
            tenant = tenant.id.as_str(),
            interaction_id = ix,
            replayed = entries.len(),
            "chat resumed"
        );
        let seen = entries
            .last()
            .map(|e| e.id.clone())
            .or_else(|| after.map(str::to_owned));
        Ok(Attached {
            chat,
            frames,
            feed,
            seen,
            closed,
        })
    }

    /// Appends an entry and publishes it if it is new.
    pub async fn append(&self, chat: &ChatRef, entry: NewEntry) -> Result<Appended, ChatError> {
        let appended = self
            .store
            .append(&chat.tenant.id, &chat.ix, entry, retention(&chat.tenant))
            .await?;
        if let Appended::New(entry) = &appended {
            let from = match entry.from {
                Party::Member => "member",
                Party::Agent => "agent",
                Party::System => "system",
            };
            metrics::counter!("careline_chat_entries_total", "tenant" => chat.tenant.id.clone(), "from" => from)
                .increment(1);
            self.feed
                .publish(&chat.tenant.id, &chat.ix, &FeedItem::Entry(entry.clone()))
                .await;
        }
        Ok(appended)
    }

    /// A message from one side; a repeated client id answers with the entry
    /// stored the first time (`Some`), a new one is published (`None`).
    pub async fn say(
        &self,
        chat: &ChatRef,
        from: Party,
        client_id: &str,
        text: &str,
    ) -> Result<Option<Entry>, ChatError> {
        match self
            .append(chat, NewEntry::message(from, client_id, text))
            .await?
        {
            Appended::New(_) => Ok(None),
            Appended::Duplicate(id) => Ok(self.store.entry(&chat.tenant.id, &chat.ix, &id).await?),
        }
    }

    /// Publishes a typing or read notice.
    pub async fn notice(&self, chat: &ChatRef, item: FeedItem) {
        self.feed.publish(&chat.tenant.id, &chat.ix, &item).await;
    }

    /// Holds the member's place: the chat is abandoned if nobody renews this
    /// within the resume grace (a socket dropped, or its replica died).
    pub async fn lease(&self, chat: &ChatRef) -> Result<(), ChatError> {
        self.store
            .set_grace(
                &chat.tenant.id,
                &chat.ix,
                now_ms() + millis(self.resume_grace),
            )
            .await
    }

    /// Renews the lease of a connected member (not of a chat already settled).
    pub async fn renew(&self, chat: &ChatRef) -> Result<(), ChatError> {
        self.store
            .extend_grace(
                &chat.tenant.id,
                &chat.ix,
                now_ms() + millis(self.resume_grace),
            )
            .await
    }

    /// Closes the chat (once: a second close does nothing) and settles its
    /// interaction at the router with `disposition`; the router is retried by
    /// the sweep if it cannot be reached now.
    pub async fn close(
        &self,
        chat: &ChatRef,
        reason: &str,
        disposition: &str,
    ) -> Result<(), ChatError> {
        let appended = self.append(chat, NewEntry::closed(reason)).await;
        match appended {
            Ok(Appended::New(_)) => {
                tracing::info!(
                    tenant = chat.tenant.id.as_str(),
                    interaction_id = chat.ix.as_str(),
                    reason,
                    "chat closed"
                );
                metrics::counter!("careline_chat_closed_total", "tenant" => chat.tenant.id.clone(), "reason" => reason.to_owned())
                    .increment(1);
            }
            Ok(Appended::Duplicate(_)) | Err(ChatError::Closed) => return Ok(()),
            Err(error) => return Err(error),
        }
        self.store.claim(&chat.tenant.id, &chat.ix).await?;
        self.settle(chat, disposition).await;
        Ok(())
    }

    async fn settle(&self, chat: &ChatRef, disposition: &str) {
        if let Err(error) = self
            .router
            .settle(&chat.tenant.id, &chat.ix, disposition)
            .await
        {
            tracing::warn!(
                tenant = chat.tenant.id.as_str(),
                interaction_id = chat.ix.as_str(),
                %error,
                "settling a closed chat at the router failed; retrying"
            );
            let retry = now_ms() + millis(SETTLE_RETRY);
            if let Err(error) = self.store.set_grace(&chat.tenant.id, &chat.ix, retry).await {
                tracing::error!(tenant = chat.tenant.id.as_str(), interaction_id = chat.ix.as_str(), %error, "cannot schedule the retry");
            }
        }
    }

    /// Settles the chats of every tenant whose grace ran out: closes them as
    /// abandoned (or retries settling a closed one). Returns how many it took.
    pub async fn sweep(&self) -> usize {
        let mut taken = 0;
        for id in self.tenants.tenant_ids() {
            let Some(tenant) = self.tenants.get(&id) else {
                continue;
            };
            if tenant.chat.widgets.is_empty() {
                continue;
            }
            match self.sweep_tenant(&tenant).await {
                Ok(n) => taken += n,
                Err(error) => {
                    tracing::warn!(tenant = id.as_str(), %error, "chat sweep failed");
                }
            }
        }
        taken
    }

    async fn sweep_tenant(&self, tenant: &Arc<TenantConfig>) -> Result<usize, ChatError> {
        let due = self.store.due(&tenant.id, now_ms(), SWEEP_BATCH).await?;
        let mut taken = 0;
        for ix in due {
            if !self.store.claim(&tenant.id, &ix).await? {
                continue;
            }
            taken += 1;
            let chat = ChatRef {
                tenant: tenant.clone(),
                ix,
            };
            match self.store.meta(&tenant.id, &chat.ix).await? {
                None => {}
                Some(meta) if meta.closed => self.settle(&chat, &meta.closed_reason).await,
                Some(_) => {
                    self.close(&chat, reason::ABANDONED, reason::ABANDONED)
                        .await?;
                }
            }
        }
        Ok(taken)
    }
}

impl NewEntry {
    /// A message from `from`.
    pub fn message(from: Party, client_id: &str, text: &str) -> NewEntry {
        NewEntry {
            kind: EntryKind::Message,
            from,
            client_id: client_id.to_owned(),
            agent_id: String::new(),
            agent_first_name: String::new(),
            text: text.to_owned(),
            reason: String::new(),
        }
    }

    /// The chat closed for `reason`.
    pub fn closed(reason: &str) -> NewEntry {
        NewEntry {
            kind: EntryKind::Closed,
            from: Party::System,
            client_id: CLOSED_CLIENT_ID.to_owned(),
            agent_id: String::new(),
            agent_first_name: String::new(),
            text: String::new(),
            reason: reason.to_owned(),
        }
    }

    /// Agent `agent_id` joined (once per offer it accepted).
    pub fn assigned(agent_id: &str, first_name: &str, offer_id: &str) -> NewEntry {
        NewEntry {
            kind: EntryKind::Assigned,
            from: Party::System,
            client_id: format!("assigned:{agent_id}:{offer_id}"),
            agent_id: agent_id.to_owned(),
            agent_first_name: first_name.to_owned(),
            text: String::new(),
            reason: String::new(),
        }
    }
}

/// The router request creating a chat: the member's first message as the
/// context's reason (the router finds urgency and language in it), the queue
/// of the member's topic, else the router's topic match on the text, else the
/// tenant's chat queue.
fn create_request(
    tenant: &TenantConfig,
    start: &Start,
    conversation: &str,
) -> v1::CreateInteractionRequest {
    let chosen = start.topic.as_deref().and_then(|t| tenant.topic_queue(t));
    let matched = careline_domain::classify::classify(&start.text, &tenant.routing.topics)
        .topic
        .is_some();
    let queue_id = match (chosen, matched) {
        (Some(queue), _) => queue.to_owned(),
        (None, true) => String::new(),
        (None, false) => tenant.chat_queue().unwrap_or_default().to_owned(),
    };
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("source".to_owned(), "web_chat".to_owned());
    if let Some(topic) = &start.topic {
        attributes.insert("topic".to_owned(), topic.clone());
    }
    v1::CreateInteractionRequest {
        channel: v1::Channel::Chat as i32,
        queue_id,
        language: language_proto(start.language.as_deref()) as i32,
        member_ref: format!("chat-{conversation}"),
        idempotency_key: format!("chat-{conversation}"),
        context: Some(v1::InteractionContext {
            reason: start.text.clone(),
            attributes,
            member_profile: Some(v1::MemberProfile {
                display_name: start.first_name.clone().unwrap_or_default(),
                preferred_language: start.language.clone().unwrap_or_default(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_order_by_time_then_sequence() {
        assert!(entry_order("2-0", "10-0").is_lt(), "numeric, not text");
        assert!(entry_order("10-2", "10-10").is_lt());
        assert!(entry_order("10-1", "10-1").is_eq());
        assert!(is_after("5-1", Some("5-0")));
        assert!(!is_after("5-0", Some("5-0")));
        assert!(is_after("1-0", None));
    }

    #[test]
    fn create_request_takes_the_members_topic_then_the_text_then_the_chat_queue() {
        let tenant = TenantConfig::from_yaml(careline_domain_demo()).unwrap();
        let start = |topic: Option<&str>, text: &str| Start {
            key: "k".into(),
            language: Some("es".into()),
            topic: topic.map(str::to_owned),
            first_name: Some("Ana".into()),
            text: text.into(),
            client_id: "m-1".into(),
        };
        let chosen = create_request(&tenant, &start(Some("billing"), "hola"), "c1");
        assert_eq!(chosen.queue_id, "billing");
        assert_eq!(chosen.channel, v1::Channel::Chat as i32);
        assert_eq!(chosen.language, v1::Language::Es as i32);
        assert_eq!(chosen.context.as_ref().unwrap().reason, "hola");
        let by_text = create_request(&tenant, &start(None, "I lost my password"), "c2");
        assert_eq!(by_text.queue_id, "", "the router's topic rule decides");
        let fallback = create_request(&tenant, &start(Some("nope"), "hola"), "c3");
        assert_eq!(fallback.queue_id, "general");
        assert_ne!(chosen.idempotency_key, by_text.idempotency_key);
    }

    fn careline_domain_demo() -> &'static str {
        include_str!("../../../deploy/tenants/demo-health.yaml")
    }
}
