//! Starts Redis, NATS and a router in-process with a test tenant (the demo
//! tenant, always open, outreach around the clock, campaigns with test-sized
//! pacing and ten agents serving `general`), and either campaign replicas
//! (gRPC, scheduler, consumer) or the core alone, whose passes a test runs
//! one at a time. One clock, real time plus an offset a test moves, is shared
//! by every campaign replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use careline_bus::TenantStore;
use careline_campaigns::{Campaigns, CampaignsConfig, Clock};
use careline_domain::Channel;
use careline_domain::TenantConfig;
use careline_domain::campaign::{CampaignConfig, Pacing, RetryPolicy};
use careline_domain::tenant::OpeningHours;
use careline_kit::{CommonConfig, Shutdown};
use careline_proto::v1;
use careline_proto::v1::campaign_service_client::CampaignServiceClient;
use careline_routing::{AgentStatus, RoutingStore};
use careline_testkit::{Bearer, Sandbox};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel as GrpcChannel;

pub use careline_testkit::demo::{API_KEY as DEMO_KEY, IVR_KEY, TENANT};

/// A CampaignService client sending a tenant's API key.
pub type Client = CampaignServiceClient<InterceptedService<GrpcChannel, Bearer>>;

/// Extra agents (clones of ana: member services, English and Spanish).
pub const EXTRA_AGENTS: usize = 8;

/// A campaign of the test tenant: voice on `general`, `max_in_progress` at
/// once, the whole agent floor allowed, two attempts a minute apart.
pub fn voice_campaign(code: &str, max_in_progress: u32) -> CampaignConfig {
    CampaignConfig {
        code: code.into(),
        name: format!("Test {code}"),
        channel: Channel::Voice,
        queue: Some("general".into()),
        language: None,
        window: Vec::new(),
        ends_on: None,
        pacing: Pacing {
            max_in_progress,
            max_per_hour: 100_000,
            agent_share_percent: 100,
        },
        retry: RetryPolicy {
            attempts: 2,
            spacing_secs: 60,
        },
        template: None,
        callback: false,
    }
}

/// The test tenant: the demo tenant always open, urgent contacts kept in
/// their queue, offers and sessions that outlast a test, outreach around the
/// clock, `campaigns` in place of the demo's, [`EXTRA_AGENTS`] more agents.
pub fn tenant(campaigns: Vec<CampaignConfig>) -> TenantConfig {
    let mut config = careline_testkit::demo::tenant_always_open();
    config.routing.urgent_queue = None;
    config.routing.offer_timeout_secs.voice = 3_600;
    config.routing.heartbeat_ttl_secs = 3_600;
    config.outreach.hours = vec![OpeningHours {
        days: vec![
            chrono::Weekday::Mon,
            chrono::Weekday::Tue,
            chrono::Weekday::Wed,
            chrono::Weekday::Thu,
            chrono::Weekday::Fri,
            chrono::Weekday::Sat,
            chrono::Weekday::Sun,
        ],
        open: "00:00".into(),
        close: "00:00".into(),
    }];
    config.outreach.campaigns = campaigns;
    let ana = config.agents[0].clone();
    for i in 1..=EXTRA_AGENTS {
        let mut agent = ana.clone();
        agent.id = format!("out-{i}");
        config.agents.push(agent);
    }
    config.validate().expect("the test tenant is valid");
    config
}

pub struct Replica {
    pub addr: std::net::SocketAddr,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub struct Platform {
    pub sandbox: Sandbox,
    pub tenant: TenantConfig,
    pub routing: RoutingStore,
    router_addr: std::net::SocketAddr,
    router: Option<(Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    offset_ms: Arc<AtomicI64>,
    pub replicas: Vec<Replica>,
    core_shutdown: Shutdown,
}

impl Platform {
    /// Redis, NATS, a router and `tenant` applied; no campaign replica yet.
    pub async fn start(tenant: TenantConfig) -> Platform {
        let sandbox = Sandbox::start().await.expect("redis and nats start");
        let js = async_nats::jetstream::new(sandbox.nats().await.expect("nats client"));
        TenantStore::open(&js, None)
            .await
            .expect("tenant bucket")
            .put(&tenant)
            .await
            .expect("tenant applied");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let router_addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let server = tokio::spawn(careline_router::serve(
            careline_router::RouterConfig::with_common(common(&sandbox)),
            listener,
            shutdown.clone(),
        ));
        careline_testkit::router::wait_router_ready(router_addr, DEMO_KEY).await;
        let routing = RoutingStore::connect(&sandbox.redis_url()).await.unwrap();
        Platform {
            sandbox,
            tenant,
            routing,
            router_addr,
            router: Some((shutdown, server)),
            offset_ms: Arc::new(AtomicI64::new(0)),
            replicas: Vec::new(),
            core_shutdown: Shutdown::new(),
        }
    }

    /// The campaigns configuration of this platform.
    pub fn config(&self) -> CampaignsConfig {
        let mut config = CampaignsConfig::with_common(common(&self.sandbox));
        config.router_url = format!("http://{}", self.router_addr);
        config.router_api_keys = format!("{TENANT}={DEMO_KEY}").parse().unwrap();
        config
    }

    /// The shared clock: real time plus the offset.
    pub fn clock(&self) -> Clock {
        let offset = self.offset_ms.clone();
        Arc::new(move || chrono::Utc::now().timestamp_millis() + offset.load(Ordering::SeqCst))
    }

    /// Moves the shared clock `ms` ahead.
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// The campaigns core with `clock`, no scheduler: the test runs passes.
    pub async fn core(&self, clock: Clock) -> Campaigns {
        let campaigns = Campaigns::connect(&self.config(), clock, &self.core_shutdown)
            .await
            .expect("campaigns core connects");
        careline_testkit::assert_eventually!(
            campaigns
                .stats(TENANT, &self.tenant.outreach.campaigns[0].code)
                .await
                .is_ok(),
            "the core has the tenant"
        );
        campaigns
    }

    /// Starts one more campaign replica on the shared clock.
    pub async fn start_replica(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let server = tokio::spawn(careline_campaigns::serve_with(
            self.config(),
            listener,
            shutdown.clone(),
            self.clock(),
        ));
        self.replicas.push(Replica {
            addr,
            shutdown,
            server,
        });
        let code = self.tenant.outreach.campaigns[0].code.clone();
        let mut client = self.client(self.replicas.len() - 1, DEMO_KEY).await;
        careline_testkit::assert_eventually!(
            client
                .get_campaign_stats(v1::GetCampaignStatsRequest {
                    campaign_code: code.clone()
                })
                .await
                .is_ok(),
            "campaign replica ready"
        );
    }

    /// A client of replica `index` sending `key`.
    pub async fn client(&self, index: usize, key: &str) -> Client {
        let channel = loop {
            match GrpcChannel::from_shared(format!("http://{}", self.replicas[index].addr))
                .unwrap()
                .connect()
                .await
            {
                Ok(channel) => break channel,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        CampaignServiceClient::with_interceptor(channel, Bearer::new(key))
    }

    /// A router client of the demo tenant.
    pub async fn router(&self) -> careline_testkit::router::Router {
        careline_testkit::router::router_client(self.router_addr, DEMO_KEY).await
    }

    /// Queues an inbound voice contact of `member` in `general`; its id.
    pub async fn inbound(&self, member: &str, urgent: bool) -> String {
        self.router()
            .await
            .create_interaction(v1::CreateInteractionRequest {
                channel: v1::Channel::Voice as i32,
                queue_id: "general".into(),
                member_ref: member.into(),
                urgent,
                idempotency_key: format!("inbound-{member}"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .interaction
            .unwrap()
            .id
    }

    /// Interaction `id` as the router shows it.
    pub async fn interaction(&self, id: &str) -> v1::Interaction {
        self.router()
            .await
            .get_interaction(v1::GetInteractionRequest {
                interaction_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Logs `agents` in to the routing state as `status`.
    pub async fn login(&self, agents: &[&str], status: AgentStatus) {
        for agent in agents {
            self.routing
                .agent_login(&self.tenant, agent, &format!("s-{agent}"), status)
                .await
                .expect("agent logs in");
        }
    }

    /// Every agent serving `general` (ana, luis and the extra ones), available.
    pub async fn login_floor(&self) -> Vec<String> {
        let mut agents = vec!["ana".to_owned(), "luis".to_owned()];
        agents.extend((1..=EXTRA_AGENTS).map(|i| format!("out-{i}")));
        let names: Vec<&str> = agents.iter().map(String::as_str).collect();
        self.login(&names, AgentStatus::Available).await;
        agents
    }

    /// The tenant's live interactions (every state but ended).
    pub async fn live_interactions(&self) -> Vec<v1::Interaction> {
        let mut router = self.router().await;
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = router
                .list_interactions(v1::ListInteractionsRequest {
                    page: Some(v1::PageRequest {
                        page_size: 500,
                        page_token: token.clone(),
                    }),
                    ..Default::default()
                })
                .await
                .expect("interactions listed")
                .into_inner();
            all.extend(page.interactions);
            token = page.page.map(|p| p.next_page_token).unwrap_or_default();
            if token.is_empty() {
                return all;
            }
        }
    }

    /// Live outbound interactions of campaign `code`.
    pub async fn outbound(&self, code: &str) -> Vec<v1::Interaction> {
        self.live_interactions()
            .await
            .into_iter()
            .filter(|ix| {
                ix.context
                    .as_ref()
                    .and_then(|c| c.attributes.get("campaign"))
                    .is_some_and(|c| c == code)
            })
            .collect()
    }

    /// Stops every replica and the router.
    pub async fn stop(mut self) {
        self.core_shutdown.trigger();
        for replica in std::mem::take(&mut self.replicas) {
            replica.shutdown.trigger();
            replica.server.await.unwrap().unwrap();
        }
        self.stop_router().await;
    }

    /// Stops the router (calls to it fail from now on).
    pub async fn stop_router(&mut self) {
        if let Some((shutdown, server)) = self.router.take() {
            shutdown.trigger();
            server.await.unwrap().unwrap();
        }
    }
}

fn common(sandbox: &Sandbox) -> CommonConfig {
    CommonConfig {
        redis_url: sandbox.redis_url(),
        nats_url: sandbox.nats_url(),
        ..CommonConfig::default()
    }
}

/// `n` targets `<prefix>-0`.. with a contact hint each.
pub fn targets(prefix: &str, n: usize) -> Vec<v1::CampaignTarget> {
    (0..n)
        .map(|i| v1::CampaignTarget {
            member_ref: format!("{prefix}-{i}"),
            contact_hint: format!("+1555000{i:04}"),
            ..Default::default()
        })
        .collect()
}
