//! What the gateway needs around it: redis-server and nats-server (child processes), a router
//! and presence in this process, two bench tenants, and the chat-gateway itself as a child
//! process (release binary next to this one) so its memory is measured alone.

use std::net::SocketAddr;

use anyhow::Context;
use careline_domain::Language;
use careline_domain::tenant::{
    AgentConfig, ApiKey, ChatWidget, PerChannelOverride, Scope, TenantConfig,
};
use careline_kit::{CommonConfig, Shutdown};
use careline_localdev::{NatsServer, RedisServer};
use tokio::net::TcpListener;

use crate::server::{ServerProcess, free_addr, sibling};

/// The demo tenant file: the bench tenants are copies of it.
const DEMO_YAML: &str = include_str!("../../../deploy/tenants/demo-health.yaml");
/// Tenant of the idle sockets: no agents, so every chat stays queued.
pub const IDLE_TENANT: &str = "bench-idle";
/// Tenant of the latency phase: agents take every chat.
pub const LIVE_TENANT: &str = "bench-live";
/// Chats one bench agent holds at once (the configuration maximum is 100).
pub const AGENT_CHAT_CAPACITY: u32 = 10;
/// Resume grace given to the gateway: longer than the bench, so no chat is abandoned (and
/// settled at the router) while something is being measured.
const RESUME_GRACE_SECS: &str = "3600";

/// The widget key of a bench tenant.
pub fn widget_key(tenant: &str) -> String {
    format!("{tenant}-widget")
}

/// The API key of a bench tenant.
pub fn api_key(tenant: &str) -> String {
    format!("{tenant}-api-key-000000000000000000")
}

/// The key bench agent `agent` logs in with.
pub fn agent_key(agent: &str) -> String {
    format!("{agent}-key")
}

/// The id of the `i`th bench agent.
pub fn agent_id(i: usize) -> String {
    format!("agent-{i:05}")
}

/// Redis, NATS, router and presence, running until dropped.
pub struct Backend {
    pub common: CommonConfig,
    pub router: SocketAddr,
    pub presence: SocketAddr,
    shutdown: Shutdown,
    _redis: RedisServer,
    _nats: NatsServer,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl Backend {
    /// Starts everything and applies the two bench tenants (`agents` agents on the live one).
    pub async fn start(agents: usize) -> anyhow::Result<Backend> {
        let redis = RedisServer::start()
            .await
            .context("starting redis-server")?;
        let nats = NatsServer::start().await.context("starting nats-server")?;
        let common = CommonConfig {
            redis_url: redis.url(),
            nats_url: nats.url(),
            ..CommonConfig::default()
        };
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
        let tenants = careline_bus::TenantStore::open(&js, None).await?;
        tenants.put(&tenant(IDLE_TENANT, 0)?).await?;
        tenants.put(&tenant(LIVE_TENANT, agents)?).await?;
        let shutdown = Shutdown::new();
        let router_listener = TcpListener::bind("127.0.0.1:0").await?;
        let presence_listener = TcpListener::bind("127.0.0.1:0").await?;
        let (router, presence) = (
            router_listener.local_addr()?,
            presence_listener.local_addr()?,
        );
        tokio::spawn(careline_router::serve(
            careline_router::RouterConfig::with_common(common.clone()),
            router_listener,
            shutdown.clone(),
        ));
        tokio::spawn(careline_presence::serve(
            careline_presence::PresenceConfig::with_common(common.clone()),
            presence_listener,
            shutdown.clone(),
        ));
        Ok(Backend {
            common,
            router,
            presence,
            shutdown,
            _redis: redis,
            _nats: nats,
        })
    }

    /// Starts the chat-gateway binary against this backend; returns it and its gRPC address.
    pub async fn gateway(&self) -> anyhow::Result<(ServerProcess, SocketAddr)> {
        let (http, grpc) = (free_addr()?, free_addr()?);
        let keys = [IDLE_TENANT, LIVE_TENANT]
            .map(|tenant| format!("{tenant}={}", api_key(tenant)))
            .join(",");
        let env = [
            ("CARELINE_REDIS_URL", self.common.redis_url.clone()),
            ("CARELINE_NATS_URL", self.common.nats_url.clone()),
            ("CARELINE_METRICS_ADDR", "off".to_owned()),
            ("CARELINE_CHAT_ADDR", grpc.to_string()),
            ("CARELINE_CHAT_HTTP_ADDR", http.to_string()),
            ("CARELINE_ROUTER_URL", format!("http://{}", self.router)),
            ("CARELINE_CHAT_ROUTER_API_KEYS", keys),
            (
                "CARELINE_CHAT_RESUME_GRACE_SECS",
                RESUME_GRACE_SECS.to_owned(),
            ),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v));
        let gateway = ServerProcess::start(
            "careline-chat-gateway",
            sibling("careline-chat-gateway")?,
            &[],
            &env,
            http,
        )
        .await?;
        // HTTP accepts before the gRPC side serves; agents need both.
        crate::server::wait_accepting(grpc).await?;
        Ok((gateway, grpc))
    }
}

/// A bench tenant: the demo tenant always open, its widget usable from any origin, its own
/// API key, and `agents` agents who serve every demo queue in English and Spanish.
fn tenant(id: &str, agents: usize) -> anyhow::Result<TenantConfig> {
    let mut config = TenantConfig::from_yaml(DEMO_YAML).context("demo tenant parses")?;
    config.id = id.to_owned();
    config.name = format!("Bench {id}");
    config.hours.clear();
    config.holidays.clear();
    config.inbound_email_addresses = vec![format!("members@{id}.example")];
    config.routing.wrap_up_secs = 0;
    config.chat.widgets = vec![ChatWidget {
        key: widget_key(id),
        allowed_origins: vec!["*".to_owned()],
    }];
    config.api_keys = vec![ApiKey {
        id: id.to_owned(),
        sha256: careline_kit::auth::api_key_sha256_hex(&api_key(id)),
        scopes: vec![Scope::Admin],
    }];
    config.agents = (0..agents)
        .map(|i| {
            let agent = agent_id(i);
            AgentConfig {
                key_sha256: careline_kit::auth::api_key_sha256_hex(&agent_key(&agent)),
                id: agent,
                skills: [("member_services", 5), ("billing", 5), ("clinical", 7)]
                    .into_iter()
                    .map(|(skill, level)| (skill.to_owned(), level))
                    .collect(),
                languages: vec![Language::En, Language::Es],
                capacity: PerChannelOverride {
                    chat: Some(AGENT_CHAT_CAPACITY),
                    ..Default::default()
                },
            }
        })
        .collect();
    config.validate().context("bench tenant is valid")?;
    Ok(config)
}
