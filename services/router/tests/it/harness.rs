//! Starts Redis, NATS and a router in-process, with the demo tenant (and a
//! second tenant) applied, and hands out authenticated clients.

use std::sync::{Arc, Mutex};

use careline_bus::TenantStore;
use careline_domain::TenantConfig;
use careline_kit::{CommonConfig, Shutdown};
use careline_proto::v1;
use careline_proto::v1::router_client::RouterClient;
use careline_router::RouterConfig;
use careline_testkit::{Bearer, Sandbox};
use chrono::{DateTime, Utc};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use careline_testkit::demo::API_KEY as DEMO_KEY;
/// The demo tenant as shipped.
pub use careline_testkit::demo::tenant as demo;
/// The API key of the second tenant, [`other`].
pub const OTHER_KEY: &str = "other-plan-key-11111111111111111";

/// A Router client that sends a tenant's API key (or none) with every call.
pub type Client = RouterClient<InterceptedService<Channel, Bearer>>;

pub struct Platform {
    pub sandbox: Sandbox,
    pub addr: std::net::SocketAddr,
    pub now: Arc<Mutex<DateTime<Utc>>>,
    shutdown: Shutdown,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A second tenant with its own key and the same queues and agents as the demo tenant.
pub fn other() -> TenantConfig {
    careline_testkit::demo::second_tenant(&demo(), "other-plan", "Other Plan", OTHER_KEY)
}

impl Platform {
    /// A platform whose clock reads `now` (a weekday morning in Denver by default).
    pub async fn start() -> Platform {
        Self::start_with(|_| {}).await
    }

    /// [`Platform::start`] with the router's common settings changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut CommonConfig)) -> Platform {
        Self::start_tenant(demo(), |router| configure(&mut router.common)).await
    }

    /// [`Platform::start`] with the router's own settings changed by `configure`.
    pub async fn start_router(configure: impl FnOnce(&mut RouterConfig)) -> Platform {
        Self::start_tenant(demo(), configure).await
    }

    /// [`Platform::start`] with `tenant` in place of the demo tenant as shipped.
    pub async fn start_with_demo(tenant: TenantConfig) -> Platform {
        Self::start_tenant(tenant, |_| {}).await
    }

    async fn start_tenant(
        tenant: TenantConfig,
        configure: impl FnOnce(&mut RouterConfig),
    ) -> Platform {
        let sandbox = Sandbox::start().await.expect("redis and nats start");
        let nats = sandbox.nats().await.expect("nats client");
        let js = async_nats::jetstream::new(nats);
        let store = TenantStore::open(&js, None).await.expect("tenant bucket");
        store.put(&tenant).await.expect("demo tenant applied");
        store.put(&other()).await.expect("other tenant applied");
        let now = Arc::new(Mutex::new(
            "2026-11-25T17:00:00Z".parse::<DateTime<Utc>>().unwrap(),
        ));
        let clock_now = now.clone();
        let mut config = RouterConfig::with_common(CommonConfig {
            redis_url: sandbox.redis_url(),
            nats_url: sandbox.nats_url(),
            ..CommonConfig::default()
        });
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let server = tokio::spawn(careline_router::serve_with_clock(
            config,
            listener,
            shutdown.clone(),
            Arc::new(move || *clock_now.lock().unwrap()),
        ));
        let platform = Platform {
            sandbox,
            addr,
            now,
            shutdown,
            server: Some(server),
        };
        // Ready once the tenant's settings are synced and a create can succeed.
        let mut client = platform.client(DEMO_KEY).await;
        careline_testkit::assert_eventually!(
            client
                .get_queue_stats(v1::GetQueueStatsRequest::default())
                .await
                .is_ok(),
            "router ready"
        );
        platform
    }

    pub fn set_now(&self, at: &str) {
        *self.now.lock().unwrap() = at.parse().expect("RFC 3339 time");
    }

    /// A client sending `key`.
    pub async fn client(&self, key: &str) -> Client {
        self.client_with(Bearer::new(key)).await
    }

    /// A client presenting `bearer` (e.g. [`Bearer::anonymous`]).
    pub async fn client_with(&self, bearer: Bearer) -> Client {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("connects");
        RouterClient::with_interceptor(channel, bearer)
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(server) = self.server.take() {
            server.await.expect("joins").expect("router stops cleanly");
        }
    }
}

/// A create request with the required fields filled.
pub fn create(queue: &str, channel: v1::Channel, key: &str) -> v1::CreateInteractionRequest {
    v1::CreateInteractionRequest {
        channel: channel as i32,
        queue_id: queue.into(),
        language: v1::Language::En as i32,
        member_ref: "member-123".into(),
        idempotency_key: key.into(),
        context: Some(v1::InteractionContext {
            reason: "claim status".into(),
            member_profile: Some(v1::MemberProfile {
                display_name: "Pat".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
