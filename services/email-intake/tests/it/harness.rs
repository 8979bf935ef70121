//! Starts Redis, NATS, a router and email-intake replicas in-process with the
//! demo tenant (always open) and a second tenant, and hands out clients.

use std::net::SocketAddr;
use std::time::Duration;

use careline_bus::TenantStore;
use careline_domain::TenantConfig;
use careline_email_intake::EmailIntakeConfig;
use careline_email_intake::config::RouterKeys;
use careline_kit::{CommonConfig, Shutdown};
use careline_proto::v1;
use careline_proto::v1::email_intake_client::EmailIntakeClient;
use careline_router::RouterConfig;
use careline_testkit::demo::{API_KEY as DEMO_KEY, TENANT as DEMO};
use careline_testkit::{Bearer, Sandbox};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The demo tenant's inbound address.
pub const DEMO_ADDRESS: &str = "members@demo-health.example";
/// The second tenant's API key.
pub const OTHER_KEY: &str = "other-plan-key-11111111111111111";
/// How long a test waits for a message to be routed.
pub const ROUTED_WITHIN: Duration = Duration::from_secs(20);

pub use careline_testkit::router::Router;
pub type Email = EmailIntakeClient<InterceptedService<Channel, Bearer>>;

/// One running email-intake.
pub struct Replica {
    pub smtp: SocketAddr,
    pub grpc: SocketAddr,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Replica {
    /// Stops it and waits until it stopped.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            task.await
                .expect("joins")
                .expect("email-intake stops cleanly");
        }
    }
}

pub struct Platform {
    pub sandbox: Sandbox,
    pub router_addr: SocketAddr,
    router_shutdown: Shutdown,
    router_task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Platform {
    /// Redis, NATS, the tenants and a router.
    pub async fn start() -> Platform {
        Platform::start_with(|_| {}).await
    }

    /// [`Platform::start`] with the demo tenant changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut TenantConfig)) -> Platform {
        let sandbox = Sandbox::start().await.expect("redis and nats start");
        let js = async_nats::jetstream::new(sandbox.nats().await.expect("nats client"));
        let tenants = TenantStore::open(&js, None).await.expect("tenant bucket");
        let mut demo = careline_testkit::demo::tenant_always_open();
        configure(&mut demo);
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let router_addr = listener.local_addr().unwrap();
        let router_shutdown = Shutdown::new();
        let router_task = tokio::spawn(careline_router::serve(
            RouterConfig::with_common(common(&sandbox)),
            listener,
            router_shutdown.clone(),
        ));
        let platform = Platform {
            sandbox,
            router_addr,
            router_shutdown,
            router_task: Some(router_task),
        };
        careline_testkit::router::wait_router_ready(platform.router_addr, DEMO_KEY).await;
        platform
    }

    /// An email-intake replica calling this platform's router.
    pub async fn intake(&self) -> Replica {
        self.intake_with(|_| {}).await
    }

    /// An email-intake replica with its configuration changed by `configure`.
    pub async fn intake_with(&self, configure: impl FnOnce(&mut EmailIntakeConfig)) -> Replica {
        let mut config = EmailIntakeConfig::with_common(common(&self.sandbox));
        config.router_url = format!("http://{}", self.router_addr);
        config.router_api_keys = RouterKeys(
            [
                (DEMO.to_owned(), DEMO_KEY.to_owned()),
                ("other-plan".to_owned(), OTHER_KEY.to_owned()),
            ]
            .into_iter()
            .collect(),
        );
        configure(&mut config);
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, smtp_addr) = (grpc.local_addr().unwrap(), smtp.local_addr().unwrap());
        let shutdown = Shutdown::new();
        let task = tokio::spawn(careline_email_intake::serve_with_smtp(
            config,
            grpc,
            smtp,
            shutdown.clone(),
        ));
        let replica = Replica {
            smtp: smtp_addr,
            grpc: grpc_addr,
            shutdown,
            task: Some(task),
        };
        // Serving once a call is answered by the service itself (the
        // listeners are bound before start-up, so a connect proves nothing).
        careline_testkit::assert_eventually!(
            within: Duration::from_secs(20),
            serving(&replica).await,
            "email-intake serving"
        );
        replica
    }

    /// A router client of the demo tenant.
    pub async fn router(&self) -> Router {
        careline_testkit::router::router_client(self.router_addr, DEMO_KEY).await
    }

    /// The demo tenant's email interactions, any live state.
    pub async fn email_interactions(&self) -> Vec<v1::Interaction> {
        let mut router = self.router().await;
        let listed = router
            .list_interactions(v1::ListInteractionsRequest {
                page: Some(v1::PageRequest {
                    page_size: 500,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("lists")
            .into_inner();
        listed
            .interactions
            .into_iter()
            .filter(|i| i.channel == v1::Channel::Email as i32)
            .collect()
    }

    /// Waits until the demo tenant has `count` email interactions and returns them.
    pub async fn wait_for_email_interactions(&self, count: usize) -> Vec<v1::Interaction> {
        careline_testkit::assert_eventually!(
            within: ROUTED_WITHIN,
            self.email_interactions().await.len() >= count,
            "{count} email interactions"
        );
        self.email_interactions().await
    }

    /// Notification requests published so far for the demo tenant.
    pub async fn notification_requests(&self) -> Vec<v1::NotificationRequested> {
        let js = async_nats::jetstream::new(self.sandbox.nats().await.unwrap());
        let stream = js.get_stream(careline_bus::EVENTS_STREAM).await.unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("careline.{DEMO}.notification.requested"),
                ..Default::default()
            })
            .await
            .unwrap();
        let pending = consumer.cached_info().num_pending;
        let mut out = Vec::new();
        if pending == 0 {
            return out;
        }
        let mut messages = consumer.messages().await.unwrap();
        while let Some(Ok(message)) = messages.next().await {
            out.push(prost::Message::decode(message.payload.as_ref()).unwrap());
            if message.info().unwrap().pending == 0 {
                break;
            }
        }
        out
    }

    pub async fn stop(mut self) {
        self.router_shutdown.trigger();
        if let Some(task) = self.router_task.take() {
            task.await.expect("joins").expect("router stops cleanly");
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

async fn serving(replica: &Replica) -> bool {
    let Ok(channel) = Channel::from_shared(format!("http://{}", replica.grpc))
        .unwrap()
        .connect()
        .await
    else {
        return false;
    };
    let mut client = EmailIntakeClient::with_interceptor(channel, Bearer::new(DEMO_KEY));
    let call = client.get_thread(v1::GetThreadRequest {
        interaction_id: "not-an-id".into(),
    });
    matches!(
        tokio::time::timeout(Duration::from_secs(1), call).await,
        Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument
    )
}

/// An EmailIntake client of `replica` sending `key`.
pub async fn email_client(replica: &Replica, key: &str) -> Email {
    let channel = Channel::from_shared(format!("http://{}", replica.grpc))
        .unwrap()
        .connect()
        .await
        .expect("email-intake connects");
    EmailIntakeClient::with_interceptor(channel, Bearer::new(key))
        .max_encoding_message_size(64 * 1024 * 1024)
}

/// A member's mail as raw RFC 5322 bytes.
pub fn mail(message_id: &str, from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{message_id}>\r\nFrom: {from}\r\nTo: {DEMO_ADDRESS}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A bare SMTP client: one command, one reply code.
pub struct RawSmtp {
    io: BufReader<TcpStream>,
}

impl RawSmtp {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> RawSmtp {
        let stream = TcpStream::connect(addr).await.expect("smtp connects");
        let mut client = RawSmtp {
            io: BufReader::new(stream),
        };
        assert_eq!(client.reply().await, 220, "greeting");
        client
    }

    /// Reads one (possibly multi-line) reply and returns its code.
    pub async fn reply(&mut self) -> u16 {
        loop {
            let mut line = String::new();
            let read = self.io.read_line(&mut line).await.expect("reads a reply");
            assert!(read > 0, "the server closed the connection");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line[..3].parse().expect("a reply code");
            }
        }
    }

    /// Sends `bytes` as is.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.expect("writes");
    }

    /// Sends one command line and returns the reply code.
    pub async fn command(&mut self, line: &str) -> u16 {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// A whole transaction to `recipient`; returns the code after the message.
    pub async fn deliver(&mut self, recipient: &str, raw: &[u8]) -> u16 {
        assert_eq!(self.command("EHLO client.test").await, 250);
        assert_eq!(self.command("MAIL FROM:<member@member.example>").await, 250);
        assert_eq!(self.command(&format!("RCPT TO:<{recipient}>")).await, 250);
        assert_eq!(self.command("DATA").await, 354);
        self.send(&dot_stuff(raw)).await;
        self.send(b".\r\n").await;
        self.reply().await
    }
}

/// `raw` ready to send after DATA: leading dots doubled, ending in CRLF.
pub fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    let mut line_start = true;
    for &byte in raw {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
