//! The test sandbox: Redis + NATS, the demo tenants in the config bucket, the
//! presence service running in-process, and an agent desktop client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use careline_domain::tenant::TenantConfig;
use careline_domain::{Channel, Language, Priority};
use careline_kit::Shutdown;
use careline_presence::PresenceConfig;
use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind;
use careline_proto::v1::agent_session_request::Kind as RequestKind;
use careline_proto::v1::presence_client::PresenceClient;
use careline_routing::{NewInteraction, RoutingStore};
use careline_testkit::{Sandbox, demo};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel as GrpcChannel;
use tonic::{Code, Status, Streaming};

pub use careline_testkit::demo::{API_KEY, TENANT};
/// The second tenant, [`other`].
pub const OTHER_TENANT: &str = "other-health";
/// Heartbeat TTL of the test tenants (the smallest allowed).
pub const HEARTBEAT_TTL_SECS: u32 = 3;
/// How long a test waits for one event.
pub const EVENT_WAIT: Duration = Duration::from_secs(10);

/// The demo tenant with short timers and hours that never close.
pub fn demo() -> TenantConfig {
    let mut config = demo::tenant_always_open();
    config.routing.heartbeat_ttl_secs = HEARTBEAT_TTL_SECS;
    config.routing.wrap_up_secs = 0;
    config
}

/// A second tenant with one agent, zoe, to check tenant isolation.
pub fn other() -> TenantConfig {
    let mut config = demo::second_tenant(
        &demo(),
        OTHER_TENANT,
        "Other Health",
        "other-health-key-000000000000000",
    );
    let mut zoe = config.agents[0].clone();
    zoe.id = "zoe".into();
    zoe.key_sha256 = careline_kit::auth::api_key_sha256_hex("other-agent-zoe");
    config.agents = vec![zoe];
    config
}

/// The service under test and what it runs on.
pub struct Presence {
    /// Kept alive for the test; its servers stop on drop.
    pub _sandbox: Sandbox,
    pub addr: SocketAddr,
    pub store: RoutingStore,
    pub shutdown: Shutdown,
    pub server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Presence {
    pub async fn start() -> anyhow::Result<Presence> {
        Self::start_with(demo()).await
    }

    /// Starts with `demo` (a variant of [`demo()`]) as the demo tenant.
    pub async fn start_with(demo: TenantConfig) -> anyhow::Result<Presence> {
        Self::start_with_flags(demo, &[]).await
    }

    /// Starts with `demo` as the demo tenant and `flags` added to the command line.
    pub async fn start_with_flags(demo: TenantConfig, flags: &[&str]) -> anyhow::Result<Presence> {
        let sandbox = Sandbox::start().await?;
        let js = async_nats::jetstream::new(sandbox.nats().await?);
        let tenants = careline_bus::tenants::TenantStore::open(&js, None).await?;
        let store = RoutingStore::connect(&sandbox.redis_url()).await?;
        for config in [demo, other()] {
            tenants.put(&config).await?;
            store.sync_tenant(&config).await?;
        }
        let env = HashMap::new();
        let (redis_url, nats_url) = (sandbox.redis_url(), sandbox.nats_url());
        let mut args = vec![
            "careline-presence",
            "--redis-url",
            &redis_url,
            "--nats-url",
            &nats_url,
            "--shutdown-grace-secs",
            "2",
        ];
        args.extend_from_slice(flags);
        let config: PresenceConfig = careline_kit::config::parse_from(args, &env)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = Shutdown::new();
        let server = tokio::spawn(careline_presence::serve(config, listener, shutdown.clone()));
        let presence = Presence {
            _sandbox: sandbox,
            addr,
            store,
            shutdown,
            server: Some(server),
        };
        let mut client = presence.client().await?;
        careline_testkit::eventually(EVENT_WAIT, "the demo tenant is loaded", || {
            let request = authed(v1::GetAgentRequest {
                agent_id: "ana".into(),
            });
            let mut client = client.clone();
            async move { client.get_agent(request).await.is_ok() }
        })
        .await?;
        client
            .get_agent(authed(v1::GetAgentRequest {
                agent_id: "ana".into(),
            }))
            .await?;
        Ok(presence)
    }

    pub async fn client(&self) -> anyhow::Result<PresenceClient<GrpcChannel>> {
        Ok(PresenceClient::connect(format!("http://{}", self.addr)).await?)
    }

    /// Creates an email interaction in `queue`, with context, directly in the routing state.
    pub async fn create_interaction(&self, queue: &str) -> anyhow::Result<String> {
        let created = self
            .store
            .create_interaction(
                TENANT,
                &NewInteraction {
                    channel: Channel::Email,
                    queue: queue.into(),
                    language: Language::En,
                    urgent: false,
                    urgent_reason: None,
                    priority: Priority::Normal,
                    member_ref: "member-0042".into(),
                    context: context(),
                    after_hours: false,
                    idempotency_key: uuid::Uuid::new_v4().to_string(),
                    max_waiting: 0,
                    queued_since_ms: None,
                },
            )
            .await?;
        Ok(created.interaction_id)
    }

    pub async fn interaction_state(&self, id: &str) -> v1::InteractionState {
        let interaction = self.store.get_interaction(TENANT, id).await.unwrap();
        v1::InteractionState::try_from(interaction.state).unwrap()
    }

    pub async fn agent(&self, agent: &str) -> Result<v1::Agent, Status> {
        let mut client = self.client().await.unwrap();
        Ok(client
            .get_agent(authed(v1::GetAgentRequest {
                agent_id: agent.into(),
            }))
            .await?
            .into_inner())
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The context every test interaction carries.
pub fn context() -> v1::InteractionContext {
    v1::InteractionContext {
        reason: "claim status".into(),
        summary: "asks about a denied claim".into(),
        attributes: [("ivr".to_string(), "2".to_string())].into(),
        member_profile: Some(v1::MemberProfile {
            plan_name: "Gold PPO".into(),
            age_band: "40-49".into(),
            ..Default::default()
        }),
        transcript_ref: String::new(),
    }
}

/// A request carrying the demo tenant's API key.
pub fn authed<T>(message: T) -> tonic::Request<T> {
    careline_testkit::bearer::request(message, API_KEY)
}

pub fn login_request(
    tenant: &str,
    agent: &str,
    key: &str,
    state: v1::AgentState,
) -> v1::AgentSessionRequest {
    v1::AgentSessionRequest {
        kind: Some(RequestKind::Login(v1::Login {
            tenants: vec![v1::TenantLogin {
                tenant_id: tenant.into(),
                agent_id: agent.into(),
                agent_key: key.into(),
            }],
            initial_state: state as i32,
        })),
    }
}

/// An agent desktop: the request sender and the event stream of one session.
pub struct Desk {
    pub tx: mpsc::Sender<v1::AgentSessionRequest>,
    pub events: Streaming<v1::AgentSessionEvent>,
    keep_alive: Option<JoinHandle<()>>,
}

impl Drop for Desk {
    fn drop(&mut self) {
        if let Some(task) = self.keep_alive.take() {
            task.abort();
        }
    }
}

impl Desk {
    /// Opens a session whose first message is `first`.
    pub async fn open(presence: &Presence, first: v1::AgentSessionRequest) -> Result<Desk, Status> {
        let (tx, rx) = mpsc::channel(16);
        tx.send(first).await.unwrap();
        let mut client = presence.client().await.unwrap();
        let events = client
            .open_agent_session(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Desk {
            tx,
            events,
            keep_alive: None,
        })
    }

    /// Logs a demo agent in (its key is "demo-agent-<agent>"), sends
    /// heartbeats every second, and returns the SessionStarted.
    pub async fn login(
        presence: &Presence,
        agent: &str,
        state: v1::AgentState,
    ) -> (Desk, v1::SessionStarted) {
        let mut desk = Self::login_quiet(presence, agent, state).await;
        let started = desk.started().await;
        desk.keep_alive();
        (desk, started)
    }

    /// Like [`Desk::login`] without heartbeats and without reading SessionStarted.
    pub async fn login_quiet(presence: &Presence, agent: &str, state: v1::AgentState) -> Desk {
        let key = demo::agent_key(agent);
        Desk::open(presence, login_request(TENANT, agent, &key, state))
            .await
            .unwrap()
    }

    pub fn keep_alive(&mut self) {
        let tx = self.tx.clone();
        self.keep_alive = Some(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                if tx.send(heartbeat()).await.is_err() {
                    return;
                }
            }
        }));
    }

    /// The next event, or the status that ended the stream.
    pub async fn next(&mut self) -> Result<Kind, Status> {
        match tokio::time::timeout(EVENT_WAIT, self.events.message()).await {
            Err(_) => panic!("no event within {EVENT_WAIT:?}"),
            Ok(Ok(Some(event))) => Ok(event.kind.expect("event kind")),
            Ok(Ok(None)) => Err(Status::new(Code::Ok, "stream ended")),
            Ok(Err(status)) => Err(status),
        }
    }

    pub async fn started(&mut self) -> v1::SessionStarted {
        match self.next().await {
            Ok(Kind::Started(started)) => started,
            other => panic!("expected SessionStarted, got {other:?}"),
        }
    }

    /// The next event that is not a state change.
    pub async fn next_work(&mut self) -> Kind {
        loop {
            match self.next().await {
                Ok(Kind::StateChanged(_)) => continue,
                Ok(kind) => return kind,
                Err(status) => panic!("session ended: {status:?}"),
            }
        }
    }

    pub async fn next_offer(&mut self) -> v1::Offer {
        match self.next_work().await {
            Kind::Offer(offer) => offer,
            other => panic!("expected an Offer, got {other:?}"),
        }
    }

    pub async fn send(&self, kind: RequestKind) {
        self.tx
            .send(v1::AgentSessionRequest { kind: Some(kind) })
            .await
            .unwrap();
    }

    pub async fn accept(&self, offer_id: &str) {
        self.send(RequestKind::Accept(v1::OfferAnswer {
            tenant_id: TENANT.into(),
            offer_id: offer_id.into(),
        }))
        .await;
    }

    pub async fn reject(&self, offer_id: &str) {
        self.send(RequestKind::Reject(v1::OfferAnswer {
            tenant_id: TENANT.into(),
            offer_id: offer_id.into(),
        }))
        .await;
    }
}

pub fn heartbeat() -> v1::AgentSessionRequest {
    v1::AgentSessionRequest {
        kind: Some(RequestKind::Heartbeat(v1::Heartbeat {})),
    }
}
