//! Bench agents: each holds a presence session (accepts every offer) and a ChatSession on the
//! gateway (joins every chat it is assigned), and times the member messages it receives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind as DeskEvent;
use careline_proto::v1::agent_session_request::Kind as DeskRequest;
use careline_proto::v1::chat_gateway_client::ChatGatewayClient;
use careline_proto::v1::chat_session_event::Kind as ChatEvent;
use careline_proto::v1::chat_session_request::Kind as ChatRequest;
use careline_proto::v1::presence_client::PresenceClient;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::platform::{LIVE_TENANT, agent_id, agent_key};

/// How often an agent's presence session sends a heartbeat (the demo TTL is 15 s).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// Requests buffered towards presence or the gateway per agent.
const STREAM_BUFFER: usize = 64;

/// Member messages sent and not yet seen by an agent: client id -> when it was sent.
pub type InFlight = Arc<Mutex<HashMap<String, Instant>>>;

/// What the agents share: messages in flight, the latency histogram, chats joined.
#[derive(Clone)]
pub struct Floor {
    pub in_flight: InFlight,
    pub latency_us: Arc<Mutex<Histogram<u64>>>,
    pub joined: Arc<AtomicUsize>,
}

impl Floor {
    pub fn new() -> anyhow::Result<Floor> {
        Ok(Floor {
            in_flight: Arc::default(),
            latency_us: Arc::new(Mutex::new(Histogram::new(3)?)),
            joined: Arc::default(),
        })
    }
}

/// Logs `count` agents in on presence and the gateway; they run until the set is dropped.
pub async fn start(
    count: usize,
    presence: SocketAddr,
    gateway: SocketAddr,
    floor: &Floor,
) -> anyhow::Result<JoinSet<anyhow::Result<()>>> {
    let presence = Channel::from_shared(format!("http://{presence}"))?
        .connect()
        .await?;
    let gateway = Channel::from_shared(format!("http://{gateway}"))?
        .connect()
        .await?;
    let mut agents = JoinSet::new();
    for i in 0..count {
        agents.spawn(agent(
            agent_id(i),
            presence.clone(),
            gateway.clone(),
            floor.clone(),
        ));
    }
    Ok(agents)
}

async fn agent(
    id: String,
    presence: Channel,
    gateway: Channel,
    floor: Floor,
) -> anyhow::Result<()> {
    let key = agent_key(&id);
    let (chat_tx, chat_rx) = mpsc::channel(STREAM_BUFFER);
    chat_tx
        .send(v1::ChatSessionRequest {
            kind: Some(ChatRequest::Login(v1::ChatLogin {
                tenant_id: LIVE_TENANT.into(),
                agent_id: id.clone(),
                agent_key: key.clone(),
                first_name: "Bench".into(),
            })),
        })
        .await?;
    let mut chat = ChatGatewayClient::new(gateway)
        .chat_session(ReceiverStream::new(chat_rx))
        .await?
        .into_inner();
    let (desk_tx, desk_rx) = mpsc::channel(STREAM_BUFFER);
    desk_tx
        .send(v1::AgentSessionRequest {
            kind: Some(DeskRequest::Login(v1::Login {
                tenants: vec![v1::TenantLogin {
                    tenant_id: LIVE_TENANT.into(),
                    agent_id: id.clone(),
                    agent_key: key,
                }],
                initial_state: v1::AgentState::Available as i32,
            })),
        })
        .await?;
    let mut desk = PresenceClient::new(presence)
        .open_agent_session(ReceiverStream::new(desk_rx))
        .await?
        .into_inner();
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                desk_tx.send(v1::AgentSessionRequest {
                    kind: Some(DeskRequest::Heartbeat(v1::Heartbeat {})),
                }).await?;
            }
            event = desk.message() => match event?.and_then(|e| e.kind) {
                Some(DeskEvent::Offer(offer)) => {
                    desk_tx.send(v1::AgentSessionRequest {
                        kind: Some(DeskRequest::Accept(v1::OfferAnswer {
                            tenant_id: LIVE_TENANT.into(),
                            offer_id: offer.offer_id,
                        })),
                    }).await?;
                }
                Some(DeskEvent::Assigned(assigned)) => {
                    if let Some(interaction) = assigned.interaction {
                        chat_tx.send(v1::ChatSessionRequest {
                            kind: Some(ChatRequest::Join(v1::ChatJoin {
                                interaction_id: interaction.id,
                            })),
                        }).await?;
                    }
                }
                Some(_) => {}
                None => anyhow::bail!("agent {id}: presence ended the session"),
            },
            event = chat.message() => match event?.and_then(|e| e.kind) {
                Some(ChatEvent::Joined(_)) => {
                    floor.joined.fetch_add(1, Ordering::Relaxed);
                }
                Some(ChatEvent::Entry(entry)) if entry.from == v1::ChatParty::Member as i32 => {
                    let sent = floor.in_flight.lock().expect("not poisoned").remove(&entry.client_id);
                    if let Some(sent) = sent {
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        floor.latency_us.lock().expect("not poisoned").record(micros.max(1))?;
                    }
                }
                Some(ChatEvent::Error(error)) => {
                    anyhow::bail!("agent {id}: the gateway refused a request: {}", error.message);
                }
                Some(_) => {}
                None => anyhow::bail!("agent {id}: the gateway ended the chat session"),
            },
        }
    }
}
