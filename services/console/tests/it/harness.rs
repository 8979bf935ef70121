//! Starts Redis, NATS and console replicas in-process with the demo tenant
//! (in America/New_York) applied; publishes events on the log as the router
//! does and waits until the KPI consumer has applied them.

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream;
use careline_bus::{EVENTS_STREAM, Publisher, Subject, TenantStore};
use careline_console::ConsoleConfig;
use careline_kit::{CommonConfig, Shutdown};
use careline_proto::v1;
use careline_proto::v1::console_client::ConsoleClient;
use careline_testkit::{Bearer, Sandbox, eventually};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use careline_testkit::demo::{API_KEY as DEMO_KEY, TENANT};
/// The platform operator token every replica of these tests is given.
pub const OPERATOR_TOKEN: &str = "test-operator-token-7Kq2xWv9Rb";
/// The tenant's zone in these tests: it changes clocks in March and November.
pub const TIME_ZONE: &str = "America/New_York";
/// Longest wait for the consumer to apply a scripted day.
pub const APPLY_DEADLINE: Duration = Duration::from_secs(30);

/// A Console client sending a tenant's API key.
pub type Client = ConsoleClient<InterceptedService<Channel, Bearer>>;

struct Replica {
    addr: SocketAddr,
    http: SocketAddr,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Redis, NATS, the demo tenant and console replicas.
pub struct Platform {
    pub sandbox: Sandbox,
    pub js: jetstream::Context,
    replicas: Vec<Replica>,
    /// The router and presence, when started ([`Platform::start_routing`]).
    routing: Vec<(Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    pub router_addr: Option<SocketAddr>,
    pub presence_addr: Option<SocketAddr>,
}

impl Platform {
    /// `replicas` console replicas over a fresh Redis and NATS.
    pub async fn start(replicas: usize) -> Platform {
        let sandbox = Sandbox::start().await.expect("redis and nats start");
        let js = jetstream::new(sandbox.nats().await.expect("nats client"));
        careline_bus::ensure_streams(&js)
            .await
            .expect("event stream");
        let store = TenantStore::open(&js, None).await.expect("tenant bucket");
        let mut demo = careline_testkit::demo::tenant_always_open();
        demo.time_zone = TIME_ZONE.to_owned();
        store.put(&demo).await.expect("demo tenant applied");
        let mut platform = Platform {
            sandbox,
            js,
            replicas: Vec::new(),
            routing: Vec::new(),
            router_addr: None,
            presence_addr: None,
        };
        for _ in 0..replicas {
            platform.start_replica().await;
        }
        platform
    }

    /// Starts a router and presence in-process; replicas started after it
    /// follow the router's queue stats with the demo tenant's key.
    pub async fn start_routing(&mut self) {
        let common = CommonConfig {
            redis_url: self.sandbox.redis_url(),
            nats_url: self.sandbox.nats_url(),
            ..CommonConfig::default()
        };
        let router_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let presence_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.router_addr = Some(router_listener.local_addr().unwrap());
        self.presence_addr = Some(presence_listener.local_addr().unwrap());
        let (router_shutdown, presence_shutdown) = (Shutdown::new(), Shutdown::new());
        let router = tokio::spawn(careline_router::serve(
            careline_router::RouterConfig::with_common(common.clone()),
            router_listener,
            router_shutdown.clone(),
        ));
        let presence = tokio::spawn(careline_presence::serve(
            careline_presence::PresenceConfig::with_common(common),
            presence_listener,
            presence_shutdown.clone(),
        ));
        self.routing = vec![(router_shutdown, router), (presence_shutdown, presence)];
        careline_testkit::router::wait_router_ready(self.router_addr.unwrap(), DEMO_KEY).await;
    }

    /// Starts one more replica; returns once it answers.
    pub async fn start_replica(&mut self) {
        let mut config = ConsoleConfig::with_common(CommonConfig {
            redis_url: self.sandbox.redis_url(),
            nats_url: self.sandbox.nats_url(),
            ..CommonConfig::default()
        });
        config.operator_token = OPERATOR_TOKEN.to_owned();
        if let Some(router) = self.router_addr {
            config.router_url = format!("http://{router}");
            config.router_api_keys = format!("{TENANT}={DEMO_KEY}").parse().expect("router keys");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let server = tokio::spawn(careline_console::serve_with_http(
            config,
            listener,
            http,
            shutdown.clone(),
        ));
        self.replicas.push(Replica {
            addr,
            http: http_addr,
            shutdown,
            server,
        });
        let mut client = self.client(DEMO_KEY).await;
        careline_testkit::assert_eventually!(
            client.get_kpis(v1::GetKpisRequest::default()).await.is_ok(),
            "console replica ready"
        );
    }

    /// Applies another tenant's configuration and waits until the first replica
    /// answers its key.
    pub async fn add_tenant(&self, config: &careline_domain::TenantConfig, key: &str) {
        let store = TenantStore::open(&self.js, None)
            .await
            .expect("tenant bucket");
        store.put(config).await.expect("tenant applied");
        let mut client = self.client(key).await;
        careline_testkit::assert_eventually!(
            client.get_kpis(v1::GetKpisRequest::default()).await.is_ok(),
            "the console knows the new tenant"
        );
    }

    /// The gRPC address of the first replica.
    pub fn grpc(&self) -> SocketAddr {
        self.replicas[0].addr
    }

    /// Stops every replica and waits for them to end.
    pub async fn stop_replicas(&mut self) {
        for replica in self.replicas.drain(..) {
            replica.shutdown.trigger();
            replica
                .server
                .await
                .expect("replica task")
                .expect("replica ends cleanly");
        }
    }

    /// The HTTP address (floor view) of the first replica.
    pub fn http(&self) -> SocketAddr {
        self.replicas[0].http
    }

    /// A client of the first replica sending `key`.
    pub async fn client(&self, key: &str) -> Client {
        let channel = loop {
            match Channel::from_shared(format!("http://{}", self.replicas[0].addr))
                .unwrap()
                .connect()
                .await
            {
                Ok(channel) => break channel,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        ConsoleClient::with_interceptor(channel, Bearer::new(key))
    }

    /// Publishes `events` on the log, each on its subject, as the relay does.
    pub async fn publish(&self, events: &[v1::Event]) {
        let publisher = Publisher::new(self.js.clone());
        for event in events {
            publisher
                .publish(&subject(event), event)
                .await
                .expect("event published");
        }
    }

    /// Waits until the KPI consumer has acknowledged every stored event (an
    /// event waiting to be redelivered keeps the acknowledged floor below it).
    pub async fn settled(&self) {
        let stream = self
            .js
            .get_stream(EVENTS_STREAM)
            .await
            .expect("event stream");
        eventually(APPLY_DEADLINE, "the KPI consumer settles", || {
            let mut stream = stream.clone();
            async move {
                let Ok(last) = stream.info().await.map(|info| info.state.last_sequence) else {
                    return false;
                };
                let Ok(mut consumer) = stream
                    .get_consumer::<jetstream::consumer::pull::Config>(
                        careline_console::consumer::CONSUMER,
                    )
                    .await
                else {
                    return false;
                };
                consumer
                    .info()
                    .await
                    .is_ok_and(|info| info.ack_floor.stream_sequence >= last)
            }
        })
        .await
        .expect("the KPI consumer settles");
    }

    /// Deletes the durable consumer: the next replica reads the log from the start.
    pub async fn rewind_consumer(&self) {
        self.js
            .get_stream(EVENTS_STREAM)
            .await
            .expect("event stream")
            .delete_consumer(careline_console::consumer::CONSUMER)
            .await
            .expect("consumer deleted");
    }
}

/// `careline.<tenant>.<entity>.<event>` of `event`, as the relay names it.
fn subject(event: &v1::Event) -> Subject {
    let (entity, kind) = match &event.payload {
        Some(v1::event::Payload::Interaction(ix)) => (
            "interaction",
            v1::InteractionEventKind::try_from(ix.kind)
                .unwrap()
                .as_str_name()
                .trim_start_matches("INTERACTION_EVENT_KIND_")
                .to_ascii_lowercase(),
        ),
        Some(v1::event::Payload::Agent(agent)) => (
            "agent",
            v1::AgentEventKind::try_from(agent.kind)
                .unwrap()
                .as_str_name()
                .trim_start_matches("AGENT_EVENT_KIND_")
                .to_ascii_lowercase(),
        ),
        Some(v1::event::Payload::SurveyAnswered(_)) => ("survey", "answered".to_owned()),
        Some(v1::event::Payload::QualityScored(_)) => ("quality", "scored".to_owned()),
        _ => panic!("tests publish interaction, agent, survey and quality events"),
    };
    Subject::new(&event.tenant_id, entity, &kind).unwrap()
}
