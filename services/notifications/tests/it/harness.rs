//! Starts Redis, NATS, an SMTP sink and notification replicas in-process,
//! with the demo tenant (and a second tenant) applied; publishes requests as
//! producers do and reads back what the sink received and the status events.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use careline_bus::{EVENTS_STREAM, TenantStore};
use careline_domain::TenantConfig;
use careline_kit::{CommonConfig, Shutdown};
use careline_notifications::NotificationsConfig;
use careline_proto::v1;
use careline_proto::v1::notification_service_client::NotificationServiceClient;
use careline_testkit::{Bearer, ReceivedMail, Sandbox, SmtpSink, eventually};
use futures::StreamExt as _;
use prost::Message as _;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use careline_testkit::demo::{API_KEY as DEMO_KEY, TENANT};
/// The API key of the second tenant.
pub const OTHER_KEY: &str = "other-plan-key-22222222222222222";
/// Longest wait for mail that has to go through retries.
pub const RETRY_DEADLINE: Duration = Duration::from_secs(30);

/// A NotificationService client sending a tenant's API key.
pub type Client = NotificationServiceClient<InterceptedService<Channel, Bearer>>;

struct Replica {
    addr: std::net::SocketAddr,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub struct Platform {
    pub sandbox: Sandbox,
    pub sink: SmtpSink,
    pub js: jetstream::Context,
    replicas: Vec<Replica>,
}

/// Replica settings for tests: fast retries, many attempts.
pub fn test_config(
    sandbox: &Sandbox,
    smtp_url: Option<String>,
    mail_dir: PathBuf,
) -> NotificationsConfig {
    let mut config = NotificationsConfig::with_common(CommonConfig {
        redis_url: sandbox.redis_url(),
        nats_url: sandbox.nats_url(),
        ..CommonConfig::default()
    });
    config.smtp_url = smtp_url;
    config.mail_dir = mail_dir;
    config.retry_base_ms = 50;
    config.retry_max_ms = 400;
    config.max_attempts = 40;
    config
}

impl Platform {
    /// `replicas` replicas sending to a fresh SMTP sink.
    pub async fn start(replicas: usize) -> Platform {
        Self::start_with(replicas, |_| {}).await
    }

    /// [`Platform::start`] with each replica's settings changed by `configure`.
    pub async fn start_with(
        replicas: usize,
        configure: impl Fn(&mut NotificationsConfig),
    ) -> Platform {
        Self::start_custom(replicas, configure, |_| {}).await
    }

    /// One replica, with the second tenant's configuration changed by `configure_other`.
    pub async fn start_with_other_tenant(
        configure_other: impl FnOnce(&mut TenantConfig),
    ) -> Platform {
        Self::start_custom(1, |_| {}, configure_other).await
    }

    async fn start_custom(
        replicas: usize,
        configure: impl Fn(&mut NotificationsConfig),
        configure_other: impl FnOnce(&mut TenantConfig),
    ) -> Platform {
        let sandbox = Sandbox::start().await.expect("redis and nats start");
        let sink = SmtpSink::start().await.expect("smtp sink starts");
        let js = jetstream::new(sandbox.nats().await.expect("nats client"));
        let store = TenantStore::open(&js, None).await.expect("tenant bucket");
        let demo = careline_testkit::demo::tenant();
        store.put(&demo).await.expect("demo tenant applied");
        let mut other =
            careline_testkit::demo::second_tenant(&demo, "other-plan", "Other Plan", OTHER_KEY);
        configure_other(&mut other);
        store.put(&other).await.expect("other tenant applied");
        let mut platform = Platform {
            sandbox,
            sink,
            js,
            replicas: Vec::new(),
        };
        for _ in 0..replicas {
            let mut config = test_config(
                &platform.sandbox,
                Some(platform.sink.url()),
                PathBuf::from("unused"),
            );
            configure(&mut config);
            platform.start_replica(config).await;
        }
        platform
    }

    /// Starts one more replica with `config`; returns once it serves.
    pub async fn start_replica(&mut self, config: NotificationsConfig) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let server = tokio::spawn(careline_notifications::serve(
            config,
            listener,
            shutdown.clone(),
        ));
        self.replicas.push(Replica {
            addr,
            shutdown,
            server,
        });
        let mut client = self.client(DEMO_KEY).await;
        careline_testkit::assert_eventually!(
            client
                .list_dead_letters(v1::ListDeadLettersRequest::default())
                .await
                .is_ok(),
            "notifications replica ready"
        );
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
        NotificationServiceClient::with_interceptor(channel, Bearer::new(key))
    }

    /// The gRPC address of the first replica.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.replicas[0].addr
    }

    /// Publishes `request` as a producer does (Nats-Msg-Id = notification id).
    pub async fn publish(&self, request: &v1::NotificationRequested) {
        self.publish_with_msg_id(request, &request.notification_id)
            .await;
    }

    /// Publishes `request` with another dedupe id (a second producer, or a
    /// re-publish after the duplicate window).
    pub async fn publish_with_msg_id(&self, request: &v1::NotificationRequested, msg_id: &str) {
        careline_bus::notification::publish_request(&self.js, request, msg_id)
            .await
            .expect("request published");
    }

    /// Mail the sink accepted for notification `id`.
    pub fn mail_for(&self, id: &str) -> Vec<ReceivedMail> {
        self.sink
            .received()
            .into_iter()
            .filter(|mail| {
                mail.header(careline_notifications::NOTIFICATION_ID_HEADER)
                    .as_deref()
                    == Some(id)
            })
            .collect()
    }

    /// Waits until the work queue has nothing pending or in flight.
    pub async fn settled(&self, deadline: Duration) {
        let stream = self
            .js
            .get_stream(EVENTS_STREAM)
            .await
            .expect("event stream");
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_consumer(careline_notifications::CONSUMER)
            .await
            .expect("work-queue consumer");
        eventually(deadline, "the work queue settles", || {
            let mut consumer = consumer.clone();
            async move {
                consumer
                    .info()
                    .await
                    .is_ok_and(|info| info.num_pending == 0 && info.num_ack_pending == 0)
            }
        })
        .await
        .expect("the work queue settles");
    }

    /// Every status event of `tenant` stored so far, in order.
    pub async fn statuses(&self, tenant: &str) -> Vec<(String, v1::NotificationStatusChanged)> {
        let stream = self
            .js
            .get_stream(EVENTS_STREAM)
            .await
            .expect("event stream");
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("careline.{tenant}.notification.*"),
                ..Default::default()
            })
            .await
            .expect("ordered consumer");
        let mut pending = consumer.cached_info().num_pending;
        let mut statuses = Vec::new();
        if pending == 0 {
            return statuses;
        }
        let mut messages = consumer.messages().await.expect("messages");
        while pending > 0 {
            let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .expect("next stored event")
                .expect("stream open")
                .expect("message");
            pending = message.info().expect("info").pending;
            let word = message
                .subject
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            if word != "requested" {
                let status = v1::NotificationStatusChanged::decode(message.payload.clone())
                    .expect("status event decodes");
                statuses.push((word, status));
            }
        }
        statuses
    }

    /// Status events (by word) of notification `id`.
    pub async fn statuses_of(&self, id: &str) -> Vec<(String, v1::NotificationStatusChanged)> {
        self.statuses(TENANT)
            .await
            .into_iter()
            .filter(|(_, status)| status.notification_id == id)
            .collect()
    }

    pub async fn stop(self) {
        for replica in self.replicas {
            replica.shutdown.trigger();
            replica
                .server
                .await
                .expect("joins")
                .expect("replica stops cleanly");
        }
    }
}

/// A request of the demo tenant for `template` in `language` to a member.
pub fn request(id: &str, template: &str, language: &str) -> v1::NotificationRequested {
    v1::NotificationRequested {
        notification_id: id.into(),
        tenant_id: TENANT.into(),
        template: template.into(),
        language: language.into(),
        to_address: "pat.member@example.org".into(),
        interaction_id: "ix-42".into(),
        ..Default::default()
    }
}
