//! Starts Redis, NATS, an SMTP sink, one notifications replica and survey
//! replicas in-process with the demo tenant applied and one clock the test
//! moves; publishes resolved events as the router does and reads back the
//! survey emails the sink received.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use careline_bus::{EVENTS_STREAM, Publisher, Subject, TenantStore};
use careline_kit::{CommonConfig, Shutdown};
use careline_notifications::NotificationsConfig;
use careline_proto::v1;
use careline_proto::v1::survey_service_client::SurveyServiceClient;
use careline_survey_dispatcher::{SurveyConfig, SurveyStore};
use careline_testkit::{Bearer, ReceivedMail, Sandbox, SmtpSink};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use careline_testkit::demo::{API_KEY as DEMO_KEY, TENANT};
/// Keys signing links in tests (newest first).
pub const LINK_KEYS: &str = "surveyLinkKey0123456789abcdefghij";
/// A day in ms.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// 2026-11-01T00:00:00Z, where every test's clock starts.
pub const START_MS: i64 = 1_793_491_200_000;
/// Longest wait for an email through the bus, notifications and SMTP.
pub const MAIL_DEADLINE: Duration = Duration::from_secs(20);

/// A SurveyService client sending a tenant's API key.
pub type Client = SurveyServiceClient<InterceptedService<Channel, Bearer>>;

struct Replica {
    grpc: SocketAddr,
    http: SocketAddr,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub struct Platform {
    pub sandbox: Sandbox,
    pub sink: SmtpSink,
    pub js: jetstream::Context,
    pub store: SurveyStore,
    now_ms: Arc<AtomicI64>,
    notifications: (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>),
    replicas: Vec<Replica>,
    event_seq: AtomicI64,
}

impl Platform {
    /// `replicas` survey replicas, the shipped demo tenant (surveys at once).
    pub async fn start(replicas: usize) -> Platform {
        let sandbox = Sandbox::start().await.expect("redis and nats start");
        let sink = SmtpSink::start().await.expect("smtp sink starts");
        let js = jetstream::new(sandbox.nats().await.expect("nats client"));
        let store = TenantStore::open(&js, None).await.expect("tenant bucket");
        store
            .put(&careline_testkit::demo::tenant())
            .await
            .expect("demo tenant applied");
        let common = CommonConfig {
            redis_url: sandbox.redis_url(),
            nats_url: sandbox.nats_url(),
            ..CommonConfig::default()
        };
        let mut notify = NotificationsConfig::with_common(common.clone());
        notify.smtp_url = Some(sink.url());
        notify.retry_base_ms = 50;
        notify.retry_max_ms = 400;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shutdown = Shutdown::new();
        let notifications = (
            shutdown.clone(),
            tokio::spawn(careline_notifications::serve(notify, listener, shutdown)),
        );
        let mut platform = Platform {
            store: SurveyStore::new(sandbox.redis().await.expect("redis client")),
            sandbox,
            sink,
            js,
            now_ms: Arc::new(AtomicI64::new(START_MS)),
            notifications,
            replicas: Vec::new(),
            event_seq: AtomicI64::new(0),
        };
        for _ in 0..replicas {
            platform.start_replica().await;
        }
        platform
    }

    async fn start_replica(&mut self) {
        let common = CommonConfig {
            redis_url: self.sandbox.redis_url(),
            nats_url: self.sandbox.nats_url(),
            ..CommonConfig::default()
        };
        let config = SurveyConfig::with_common(common, LINK_KEYS.parse().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc, http_addr) = (listener.local_addr().unwrap(), http.local_addr().unwrap());
        let shutdown = Shutdown::new();
        let now = self.now_ms.clone();
        let server = tokio::spawn(careline_survey_dispatcher::serve_with(
            config,
            listener,
            http,
            shutdown.clone(),
            Arc::new(move || now.load(Ordering::SeqCst)),
        ));
        self.replicas.push(Replica {
            grpc,
            http: http_addr,
            shutdown,
            server,
        });
        let mut client = self.client(DEMO_KEY).await;
        careline_testkit::assert_eventually!(
            client
                .get_survey_stats(v1::GetSurveyStatsRequest::default())
                .await
                .is_ok(),
            "survey replica ready"
        );
    }

    /// Moves the shared clock to `START_MS + days`.
    pub fn set_day(&self, days: i64) {
        self.now_ms
            .store(START_MS + days * DAY_MS, Ordering::SeqCst);
    }

    /// The shared clock.
    pub fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    /// A client of the first replica sending `key`.
    pub async fn client(&self, key: &str) -> Client {
        let channel = loop {
            match Channel::from_shared(format!("http://{}", self.replicas[0].grpc))
                .unwrap()
                .connect()
                .await
            {
                Ok(channel) => break channel,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        SurveyServiceClient::with_interceptor(channel, Bearer::new(key))
    }

    /// The survey page's address (first replica).
    pub fn http_addr(&self) -> SocketAddr {
        self.replicas[0].http
    }

    /// Gives `member_ref` an address and language for surveys.
    pub async fn set_contact(&self, member_ref: &str, address: &str, language: &str) {
        self.client(DEMO_KEY)
            .await
            .set_survey_contact(v1::SetSurveyContactRequest {
                member_ref: member_ref.into(),
                email_address: address.into(),
                language: language.into(),
            })
            .await
            .expect("contact recorded");
    }

    /// Publishes `interaction_id` resolved now, by agent `ana` on `general`,
    /// as a new event (its own event id, as a re-publish after the duplicate
    /// window or a second relay would be).
    pub async fn resolve(&self, interaction_id: &str, member_ref: &str) {
        let n = self.event_seq.fetch_add(1, Ordering::SeqCst);
        let event = v1::Event {
            event_id: format!("{TENANT}:test-{n}"),
            tenant_id: TENANT.into(),
            occurred_at_ms: self.now_ms(),
            sequence: 0,
            payload: Some(v1::event::Payload::Interaction(v1::InteractionEvent {
                kind: v1::InteractionEventKind::Resolved as i32,
                interaction_id: interaction_id.into(),
                queue_id: "general".into(),
                channel: v1::Channel::Email as i32,
                agent_id: "ana".into(),
                detail: "resolved".into(),
                member_ref: member_ref.into(),
                ..Default::default()
            })),
        };
        Publisher::new(self.js.clone())
            .publish(
                &Subject::new(TENANT, "interaction", "resolved").unwrap(),
                &event,
            )
            .await
            .expect("resolved event published");
    }

    /// Waits until the survey of `interaction_id` is settled; returns how.
    pub async fn outcome(&self, interaction_id: &str) -> String {
        let until = tokio::time::Instant::now() + MAIL_DEADLINE;
        loop {
            if let Some(outcome) = self.store.outcome(TENANT, interaction_id).await.unwrap() {
                return outcome;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "the survey of {interaction_id} was not settled within {MAIL_DEADLINE:?}"
            );
            tokio::time::sleep(careline_testkit::POLL_INTERVAL).await;
        }
    }

    /// Whether the survey consumer has nothing pending or unacknowledged.
    pub async fn consumer_idle(&self) -> bool {
        self.idle(careline_survey_dispatcher::CONSUMER).await
    }

    /// Waits until notifications has settled every request.
    pub async fn notifications_idle(&self) {
        careline_testkit::assert_eventually!(
            within: MAIL_DEADLINE,
            self.idle(careline_notifications::CONSUMER).await,
            "notifications settles every request"
        );
    }

    async fn idle(&self, durable: &str) -> bool {
        let Ok(stream) = self.js.get_stream(EVENTS_STREAM).await else {
            return false;
        };
        let Ok(mut consumer) = stream
            .get_consumer::<jetstream::consumer::pull::Config>(durable)
            .await
        else {
            return false;
        };
        match consumer.info().await {
            Ok(info) => info.num_pending == 0 && info.num_ack_pending == 0,
            Err(_) => false,
        }
    }

    /// Survey emails the sink accepted for `interaction_id`.
    pub fn surveys_for(&self, interaction_id: &str) -> Vec<ReceivedMail> {
        let id = careline_survey_dispatcher::notification_id(interaction_id);
        self.sink
            .received()
            .into_iter()
            .filter(|mail| {
                mail.header(careline_notifications::NOTIFICATION_ID_HEADER)
                    .as_deref()
                    == Some(id.as_str())
            })
            .collect()
    }

    /// Waits for the survey email of `interaction_id`; returns its link's token.
    pub async fn survey_token(&self, interaction_id: &str) -> String {
        careline_testkit::assert_eventually!(
            within: MAIL_DEADLINE,
            !self.surveys_for(interaction_id).is_empty(),
            "the survey email of {interaction_id} arrives"
        );
        let body = self.surveys_for(interaction_id)[0].decoded();
        let start = body.find("/s/").expect("the email holds a survey link") + 3;
        body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect()
    }

    /// Stops every replica.
    pub async fn stop(self) {
        for replica in self.replicas {
            replica.shutdown.trigger();
            replica.server.await.unwrap().unwrap();
        }
        let (shutdown, server) = self.notifications;
        shutdown.trigger();
        server.await.unwrap().unwrap();
    }
}

/// One HTTP/1.1 request to `addr`; returns the status and the body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, form: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}
