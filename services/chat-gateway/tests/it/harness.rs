//! Starts Redis, NATS, a router, presence and chat-gateway replicas (in-process
//! or as a child process that can be killed), with the demo tenant (always
//! open) and a second tenant; hands out member WebSocket clients
//! (tokio-tungstenite), agent desks (presence) and agent chat streams (gRPC).

use std::net::SocketAddr;
use std::time::Duration;

use careline_bus::TenantStore;
use careline_chat_gateway::ChatGatewayConfig;
use careline_chat_gateway::protocol::{ServerFrame, WS_PATH};
use careline_kit::{CommonConfig, RouterKeys, Shutdown};
use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind as DeskEvent;
use careline_proto::v1::agent_session_request::Kind as DeskRequest;
use careline_proto::v1::chat_gateway_client::ChatGatewayClient;
use careline_proto::v1::chat_session_event::Kind as ChatEvent;
use careline_proto::v1::chat_session_request::Kind as ChatRequest;
use careline_proto::v1::presence_client::PresenceClient;
use careline_testkit::Sandbox;
use careline_testkit::demo::{API_KEY as DEMO_KEY, TENANT as DEMO, WIDGET_KEY};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tonic::transport::Channel;
use tonic::{Status, Streaming};

/// An origin the demo widget allows.
pub const DEMO_ORIGIN: &str = "http://127.0.0.1:8090";
/// The second tenant's API key.
pub const OTHER_KEY: &str = "other-plan-key-11111111111111111";
/// Longest wait for one frame or event.
pub const WAIT: Duration = Duration::from_secs(20);

pub use careline_testkit::router::Router;

/// Redis, NATS, tenants, a router and presence.
pub struct Platform {
    pub sandbox: Sandbox,
    pub router_addr: SocketAddr,
    pub presence_addr: SocketAddr,
    services: Vec<(Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

impl Drop for Platform {
    fn drop(&mut self) {
        for (shutdown, _) in &self.services {
            shutdown.trigger();
        }
    }
}

/// The settings every service of a platform on `sandbox` shares.
pub fn common(sandbox: &Sandbox) -> CommonConfig {
    CommonConfig {
        redis_url: sandbox.redis_url(),
        nats_url: sandbox.nats_url(),
        ..CommonConfig::default()
    }
}

/// The demo tenant's router key, for a service that calls the router.
pub fn demo_router_keys() -> RouterKeys {
    RouterKeys(
        [(DEMO.to_owned(), DEMO_KEY.to_owned())]
            .into_iter()
            .collect(),
    )
}

async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

impl Platform {
    pub async fn start() -> Platform {
        let sandbox = Sandbox::start().await.expect("redis and nats start");
        let js = async_nats::jetstream::new(sandbox.nats().await.expect("nats client"));
        let tenants = TenantStore::open(&js, None).await.expect("tenant bucket");
        let demo = careline_testkit::demo::tenant_always_open();
        tenants.put(&demo).await.expect("demo tenant applied");
        tenants
            .put(&careline_testkit::demo::second_tenant(
                &demo,
                "other-plan",
                "Other Plan",
                OTHER_KEY,
            ))
            .await
            .expect("other tenant applied");
        let (router_listener, router_addr) = listener().await;
        let (presence_listener, presence_addr) = listener().await;
        let router_shutdown = Shutdown::new();
        let presence_shutdown = Shutdown::new();
        let router = tokio::spawn(careline_router::serve(
            careline_router::RouterConfig::with_common(common(&sandbox)),
            router_listener,
            router_shutdown.clone(),
        ));
        let presence = tokio::spawn(careline_presence::serve(
            careline_presence::PresenceConfig::with_common(common(&sandbox)),
            presence_listener,
            presence_shutdown.clone(),
        ));
        let platform = Platform {
            sandbox,
            router_addr,
            presence_addr,
            services: vec![(router_shutdown, router), (presence_shutdown, presence)],
        };
        careline_testkit::router::wait_router_ready(platform.router_addr, DEMO_KEY).await;
        platform
    }

    /// A router client with the demo tenant's API key.
    pub async fn router(&self) -> Router {
        careline_testkit::router::router_client(self.router_addr, DEMO_KEY).await
    }

    /// The state of interaction `ix` at the router.
    pub async fn state(&self, ix: &str) -> v1::InteractionState {
        let interaction = self
            .router()
            .await
            .get_interaction(v1::GetInteractionRequest {
                interaction_id: ix.into(),
            })
            .await
            .expect("interaction exists")
            .into_inner();
        v1::InteractionState::try_from(interaction.state).unwrap()
    }

    /// The configuration of a gateway replica of this platform.
    pub fn gateway_config(&self) -> ChatGatewayConfig {
        let mut config = ChatGatewayConfig::with_common(common(&self.sandbox));
        config.router_url = format!("http://{}", self.router_addr);
        config.router_api_keys = RouterKeys(
            [
                (DEMO.to_owned(), DEMO_KEY.to_owned()),
                ("other-plan".to_owned(), OTHER_KEY.to_owned()),
            ]
            .into_iter()
            .collect(),
        );
        config
    }

    /// A gateway replica in this process.
    pub async fn gateway(&self) -> Gateway {
        self.gateway_with(|_| {}).await
    }

    /// A gateway replica with its configuration changed by `configure`.
    pub async fn gateway_with(&self, configure: impl FnOnce(&mut ChatGatewayConfig)) -> Gateway {
        let mut config = self.gateway_config();
        configure(&mut config);
        let (grpc, grpc_addr) = listener().await;
        let (http, http_addr) = listener().await;
        let shutdown = Shutdown::new();
        let task = tokio::spawn(careline_chat_gateway::serve_with_http(
            config,
            grpc,
            http,
            shutdown.clone(),
        ));
        let gateway = Gateway {
            http: http_addr,
            grpc: grpc_addr,
            run: Run::InProcess {
                shutdown,
                task: Some(task),
            },
        };
        gateway.wait_serving().await;
        gateway
    }

    /// A gateway replica as a child process (the real binary), to kill.
    pub async fn gateway_process(&self) -> Gateway {
        let config = self.gateway_config();
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        };
        let (grpc, http) = (free(), free());
        let keys = config
            .router_api_keys
            .0
            .iter()
            .map(|(tenant, key)| format!("{tenant}={key}"))
            .collect::<Vec<_>>()
            .join(",");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_careline-chat-gateway"))
            .env("CARELINE_REDIS_URL", &config.common.redis_url)
            .env("CARELINE_NATS_URL", &config.common.nats_url)
            .env("CARELINE_METRICS_ADDR", "off")
            .env("CARELINE_CHAT_ADDR", grpc.to_string())
            .env("CARELINE_CHAT_HTTP_ADDR", http.to_string())
            .env("CARELINE_ROUTER_URL", &config.router_url)
            .env("CARELINE_CHAT_ROUTER_API_KEYS", keys)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("the chat-gateway binary starts");
        let gateway = Gateway {
            http,
            grpc,
            run: Run::Process(child),
        };
        gateway.wait_serving().await;
        gateway
    }

    /// An agent desk (presence session) of demo agent `agent`, available, sending heartbeats.
    pub async fn desk(&self, agent: &str) -> Desk {
        let (tx, rx) = mpsc::channel(16);
        tx.send(v1::AgentSessionRequest {
            kind: Some(DeskRequest::Login(v1::Login {
                tenants: vec![v1::TenantLogin {
                    tenant_id: DEMO.into(),
                    agent_id: agent.into(),
                    agent_key: careline_testkit::demo::agent_key(agent),
                }],
                initial_state: v1::AgentState::Available as i32,
            })),
        })
        .await
        .unwrap();
        let channel = Channel::from_shared(format!("http://{}", self.presence_addr))
            .unwrap()
            .connect()
            .await
            .expect("presence connects");
        let events = PresenceClient::new(channel)
            .open_agent_session(ReceiverStream::new(rx))
            .await
            .expect("agent session opens")
            .into_inner();
        let heartbeats = tx.clone();
        let keep_alive = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let beat = v1::AgentSessionRequest {
                    kind: Some(DeskRequest::Heartbeat(v1::Heartbeat {})),
                };
                if heartbeats.send(beat).await.is_err() {
                    return;
                }
            }
        });
        Desk {
            tx,
            events,
            keep_alive,
            offers: Vec::new(),
        }
    }
}

enum Run {
    InProcess {
        shutdown: Shutdown,
        task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    },
    Process(tokio::process::Child),
}

/// One chat-gateway replica.
pub struct Gateway {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    run: Run,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Run::InProcess { shutdown, .. } = &self.run {
            shutdown.trigger();
        }
    }
}

impl Gateway {
    async fn wait_serving(&self) {
        careline_testkit::assert_eventually!(
            within: WAIT,
            self.chat_client().await.is_ok(),
            "chat-gateway {} answers gRPC",
            self.grpc
        );
        careline_testkit::assert_eventually!(
            within: WAIT,
            TcpStream::connect(self.http).await.is_ok(),
            "chat-gateway {} accepts HTTP",
            self.http
        );
    }

    async fn chat_client(&self) -> anyhow::Result<ChatGatewayClient<Channel>> {
        let channel = Channel::from_shared(format!("http://{}", self.grpc))?
            .connect()
            .await?;
        let mut client = ChatGatewayClient::new(channel);
        // Answered by the service itself (NOT_FOUND), not refused by a half-started server.
        let probe = careline_testkit::bearer::request(
            v1::GetTranscriptRequest {
                interaction_id: "ix_00000000000000000000000000".into(),
            },
            DEMO_KEY,
        );
        match client.get_transcript(probe).await {
            Err(status) if status.code() == tonic::Code::NotFound => Ok(client),
            other => anyhow::bail!("not serving yet: {other:?}"),
        }
    }

    /// `GetTranscript` with `api_key`.
    pub async fn transcript(&self, ix: &str, api_key: &str) -> Result<v1::Transcript, Status> {
        let mut client = self.chat_client().await.expect("gateway serving");
        client
            .get_transcript(careline_testkit::bearer::request(
                v1::GetTranscriptRequest {
                    interaction_id: ix.into(),
                },
                api_key,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Stops an in-process replica (members see 1001) or kills a child process (SIGKILL).
    pub async fn stop(mut self) {
        match &mut self.run {
            Run::InProcess { shutdown, task } => {
                shutdown.trigger();
                if let Some(task) = task.take() {
                    task.await.expect("joins").expect("gateway stops cleanly");
                }
            }
            Run::Process(child) => {
                child.kill().await.expect("kill -9 the gateway");
            }
        }
    }

    /// A member socket sending the demo widget's allowed origin.
    pub async fn member(&self) -> MemberSocket {
        MemberSocket::connect(self.http, Some(DEMO_ORIGIN)).await
    }

    /// An agent's ChatSession, logged in as demo agent `agent` called `first_name`.
    pub async fn agent(&self, agent: &str, first_name: &str) -> AgentChat {
        let chat = self
            .agent_login(
                DEMO,
                agent,
                &careline_testkit::demo::agent_key(agent),
                first_name,
            )
            .await;
        let mut chat = chat;
        match chat.next().await {
            Ok(ChatEvent::Started(_)) => chat,
            other => panic!("expected ChatSessionStarted, got {other:?}"),
        }
    }

    /// A ChatSession whose login is `tenant`, `agent`, `key` (may be refused).
    pub async fn agent_login(
        &self,
        tenant: &str,
        agent: &str,
        key: &str,
        first_name: &str,
    ) -> AgentChat {
        let (tx, rx) = mpsc::channel(64);
        tx.send(v1::ChatSessionRequest {
            kind: Some(ChatRequest::Login(v1::ChatLogin {
                tenant_id: tenant.into(),
                agent_id: agent.into(),
                agent_key: key.into(),
                first_name: first_name.into(),
            })),
        })
        .await
        .unwrap();
        let channel = Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .expect("gateway connects");
        let events = ChatGatewayClient::new(channel)
            .chat_session(ReceiverStream::new(rx))
            .await
            .expect("chat session opens")
            .into_inner();
        AgentChat {
            sender: AgentSender(tx),
            events,
        }
    }
}

/// An agent desk: the presence session that receives offers.
pub struct Desk {
    tx: mpsc::Sender<v1::AgentSessionRequest>,
    events: Streaming<v1::AgentSessionEvent>,
    keep_alive: tokio::task::JoinHandle<()>,
    /// Offers received while waiting for another one.
    offers: Vec<v1::Offer>,
}

impl Drop for Desk {
    fn drop(&mut self) {
        self.keep_alive.abort();
    }
}

impl Desk {
    /// Waits for the offer of `ix`, accepts it, and waits until it is assigned.
    pub async fn take(&mut self, ix: &str) {
        let is_it = |offer: &v1::Offer| offer.interaction.as_ref().is_some_and(|i| i.id == ix);
        let offer_id = match self.offers.iter().position(is_it) {
            Some(i) => self.offers.remove(i).offer_id,
            None => loop {
                match self.next().await {
                    DeskEvent::Offer(offer) if is_it(&offer) => break offer.offer_id,
                    DeskEvent::Offer(offer) => self.offers.push(offer),
                    _ => continue,
                }
            },
        };
        self.tx
            .send(v1::AgentSessionRequest {
                kind: Some(DeskRequest::Accept(v1::OfferAnswer {
                    tenant_id: DEMO.into(),
                    offer_id,
                })),
            })
            .await
            .unwrap();
        loop {
            match self.next().await {
                DeskEvent::Assigned(assigned)
                    if assigned.interaction.as_ref().is_some_and(|i| i.id == ix) =>
                {
                    return;
                }
                DeskEvent::Offer(offer) => self.offers.push(offer),
                _ => continue,
            }
        }
    }

    async fn next(&mut self) -> DeskEvent {
        match tokio::time::timeout(WAIT, self.events.message()).await {
            Ok(Ok(Some(event))) => event.kind.expect("event kind"),
            other => panic!("desk: no event within {WAIT:?}: {other:?}"),
        }
    }
}

/// The sending half of an agent's chat stream.
#[derive(Clone)]
pub struct AgentSender(mpsc::Sender<v1::ChatSessionRequest>);

impl AgentSender {
    async fn request(&self, kind: ChatRequest) {
        self.0
            .send(v1::ChatSessionRequest { kind: Some(kind) })
            .await
            .expect("chat stream open");
    }

    pub async fn say(&self, ix: &str, client_id: &str, text: &str) {
        self.request(ChatRequest::Send(v1::ChatSend {
            interaction_id: ix.into(),
            client_id: client_id.into(),
            text: text.into(),
        }))
        .await;
    }
}

/// An agent's chat stream.
pub struct AgentChat {
    pub sender: AgentSender,
    pub events: Streaming<v1::ChatSessionEvent>,
}

impl AgentChat {
    /// The sending half and the events, to read them in another task.
    pub fn split(self) -> (AgentSender, Streaming<v1::ChatSessionEvent>) {
        (self.sender, self.events)
    }

    async fn request(&self, kind: ChatRequest) {
        self.sender.request(kind).await;
    }

    /// The next event, or the status that ended the stream.
    pub async fn next(&mut self) -> Result<ChatEvent, Status> {
        match tokio::time::timeout(WAIT, self.events.message()).await {
            Err(_) => panic!("agent: no chat event within {WAIT:?}"),
            Ok(Ok(Some(event))) => Ok(event.kind.expect("event kind")),
            Ok(Ok(None)) => Err(Status::ok("stream ended")),
            Ok(Err(status)) => Err(status),
        }
    }

    /// Skips events until `pick` returns something.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(&ChatEvent) -> Option<T>) -> T {
        loop {
            let event = self.next().await.expect("chat stream open");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    /// Joins chat `ix`; returns what the gateway answered first.
    pub async fn join(&mut self, ix: &str) -> ChatEvent {
        self.request(ChatRequest::Join(v1::ChatJoin {
            interaction_id: ix.into(),
        }))
        .await;
        self.next().await.expect("chat stream open")
    }

    /// Joins chat `ix` and returns its transcript.
    pub async fn joined(&mut self, ix: &str) -> v1::ChatJoined {
        match self.join(ix).await {
            ChatEvent::Joined(joined) => joined,
            other => panic!("expected Joined, got {other:?}"),
        }
    }

    pub async fn say(&self, ix: &str, client_id: &str, text: &str) {
        self.sender.say(ix, client_id, text).await;
    }

    pub async fn end(&self, ix: &str) {
        self.request(ChatRequest::End(v1::ChatEnd {
            interaction_id: ix.into(),
            disposition: "answered".into(),
        }))
        .await;
    }

    /// Waits for the member's message `text`.
    pub async fn heard(&mut self, text: &str) -> v1::TranscriptEntry {
        self.until(|event| match event {
            ChatEvent::Entry(entry)
                if entry.from == v1::ChatParty::Member as i32 && entry.text == text =>
            {
                Some(entry.clone())
            }
            _ => None,
        })
        .await
    }
}

/// A member's WebSocket.
pub struct MemberSocket {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a member socket ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code.
    Code(u16),
    /// The connection ended without a close frame.
    Dropped,
}

impl MemberSocket {
    /// Opens `/v1/chat/ws` on `http`, sending `origin` (none: no Origin header).
    pub async fn connect(http: SocketAddr, origin: Option<&str>) -> MemberSocket {
        let mut request = format!("ws://{http}{WS_PATH}")
            .into_client_request()
            .unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("Origin", origin.parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket upgrade");
        MemberSocket { ws }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("frame sent");
    }

    pub async fn send(&mut self, value: serde_json::Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends `start` in `language` with first message `text` (client id `m-1`).
    pub async fn start(&mut self, language: &str, text: &str) {
        self.send(json!({
            "type": "start", "key": WIDGET_KEY, "language": language,
            "first_name": "Pat", "text": text, "client_id": "m-1"
        }))
        .await;
    }

    /// Starts a chat and returns (conversation id, resume token).
    pub async fn started(&mut self, language: &str, text: &str) -> (String, String) {
        self.start(language, text).await;
        match self.frame().await {
            ServerFrame::Started {
                conversation_id,
                resume_token,
                ..
            } => (conversation_id, resume_token),
            other => panic!("expected started, got {other:?}"),
        }
    }

    /// The next frame from the gateway.
    pub async fn frame(&mut self) -> ServerFrame {
        self.try_frame()
            .await
            .unwrap_or_else(|ended| panic!("socket ended: {ended:?}"))
    }

    /// The next frame, or how the socket ended.
    pub async fn try_frame(&mut self) -> Result<ServerFrame, Ended> {
        loop {
            let message = match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => panic!("member: no frame within {WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) => return Err(Ended::Dropped),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    return Ok(serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("undocumented frame {text}: {e}")));
                }
                Message::Close(Some(frame)) => return Err(Ended::Code(frame.code.into())),
                Message::Close(None) => return Err(Ended::Dropped),
                _ => continue,
            }
        }
    }

    /// Skips frames until `pick` returns something.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(&ServerFrame) -> Option<T>) -> T {
        loop {
            let frame = self.frame().await;
            if let Some(found) = pick(&frame) {
                return found;
            }
        }
    }

    /// Waits for the agent's message `text`; returns its id.
    pub async fn heard(&mut self, text: &str) -> String {
        let wanted = text.to_owned();
        self.until(move |frame| match frame {
            ServerFrame::Message { id, text, .. } if *text == wanted => Some(id.clone()),
            _ => None,
        })
        .await
    }

    /// Reads until the socket ends; returns how.
    pub async fn ended(&mut self) -> Ended {
        loop {
            if let Err(ended) = self.try_frame().await {
                return ended;
            }
        }
    }
}
