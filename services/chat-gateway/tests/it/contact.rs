//! The contact form on real peers: Redis, NATS, a router, email-intake and a gateway. A
//! submission (JSON from the widget, form-encoded from the plain page) becomes an email
//! interaction through `IngestEmail`, accepted while the tenant is closed, and the agent's
//! `ReplyEmail` goes to the member's address; bad input gets a clear error and creates nothing.

use std::net::SocketAddr;
use std::time::Duration;

use careline_bus::TenantStore;
use careline_domain::TenantConfig;
use careline_email_intake::EmailIntakeConfig;
use careline_kit::Shutdown;
use careline_proto::v1;
use careline_proto::v1::email_intake_client::EmailIntakeClient;
use careline_testkit::Bearer;
use careline_testkit::demo::{API_KEY as DEMO_KEY, TENANT as DEMO, WIDGET_KEY};
use futures::StreamExt;
use serde_json::json;
use tonic::transport::Channel;

use crate::harness::{DEMO_ORIGIN, Gateway, Platform, common, demo_router_keys};
use careline_testkit::http::http;

/// How long a submission may take to become an interaction.
const ROUTED_WITHIN: Duration = Duration::from_secs(20);

/// A platform whose demo tenant is closed today, email-intake, and a gateway handing contact
/// forms to it.
pub struct ContactPlatform {
    pub platform: Platform,
    pub gateway: Gateway,
    email_intake: SocketAddr,
    _intake: (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>),
}

impl ContactPlatform {
    pub async fn start() -> ContactPlatform {
        Self::start_with(|_| {}).await
    }

    /// [`start`](Self::start) with the closed demo tenant changed by `configure` first.
    pub async fn start_with(configure: impl FnOnce(&mut TenantConfig)) -> ContactPlatform {
        let platform = Platform::start().await;
        close_demo(&platform, configure).await;
        let (intake_addr, intake) = start_email_intake(&platform).await;
        let gateway = platform
            .gateway_with(|config| config.email_intake_url = format!("http://{intake_addr}"))
            .await;
        ContactPlatform {
            platform,
            gateway,
            email_intake: intake_addr,
            _intake: intake,
        }
    }

    /// The demo tenant's email interactions.
    pub async fn email_interactions(&self) -> Vec<v1::Interaction> {
        let mut router = self.platform.router().await;
        router
            .list_interactions(v1::ListInteractionsRequest::default())
            .await
            .expect("lists")
            .into_inner()
            .interactions
            .into_iter()
            .filter(|i| i.channel == v1::Channel::Email as i32)
            .collect()
    }

    pub async fn wait_for_email_interactions(&self, count: usize) -> Vec<v1::Interaction> {
        careline_testkit::assert_eventually!(
            within: ROUTED_WITHIN,
            self.email_interactions().await.len() >= count,
            "{count} email interactions"
        );
        self.email_interactions().await
    }

    async fn email_intake(
        &self,
    ) -> EmailIntakeClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
        let channel = Channel::from_shared(format!("http://{}", self.email_intake))
            .unwrap()
            .connect()
            .await
            .expect("email-intake connects");
        EmailIntakeClient::with_interceptor(channel, Bearer::new(DEMO_KEY))
    }

    /// Notification requests of the demo tenant published so far.
    async fn notifications(&self) -> Vec<v1::NotificationRequested> {
        let js = async_nats::jetstream::new(self.platform.sandbox.nats().await.unwrap());
        let stream = js.get_stream(careline_bus::EVENTS_STREAM).await.unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("careline.{DEMO}.notification.requested"),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut out = Vec::new();
        if consumer.cached_info().num_pending == 0 {
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
}

/// Applies the demo tenant closed all day (a holiday around today in every time zone), changed
/// by `configure` first.
pub async fn close_demo(platform: &Platform, configure: impl FnOnce(&mut TenantConfig)) {
    let mut demo = careline_testkit::demo::tenant();
    let today = chrono::Utc::now().date_naive();
    demo.holidays = vec![today.pred_opt().unwrap(), today, today.succ_opt().unwrap()];
    configure(&mut demo);
    let js = async_nats::jetstream::new(platform.sandbox.nats().await.unwrap());
    TenantStore::open(&js, None)
        .await
        .unwrap()
        .put(&demo)
        .await
        .expect("closed demo tenant applied");
}

async fn start_email_intake(
    platform: &Platform,
) -> (
    SocketAddr,
    (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>),
) {
    let mut config = EmailIntakeConfig::with_common(common(&platform.sandbox));
    config.router_url = format!("http://{}", platform.router_addr);
    config.router_api_keys = demo_router_keys();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(careline_email_intake::serve_with_smtp(
        config,
        grpc,
        smtp,
        shutdown.clone(),
    ));
    (addr, (shutdown, task))
}

async fn post_json(addr: SocketAddr, body: serde_json::Value) -> (u16, serde_json::Value) {
    let (status, _, body) = http(
        addr,
        "POST",
        "/v1/contact",
        &[
            ("Content-Type", "application/json"),
            ("Origin", DEMO_ORIGIN),
        ],
        &body.to_string(),
    )
    .await;
    (status, serde_json::from_str(&body).expect("a JSON answer"))
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_form_becomes_an_email_interaction_answered_by_email_while_closed() {
    let env = ContactPlatform::start().await;
    let text = "Hola, no entiendo el cobro de mi factura de octubre. ¿Me pueden explicar?";
    let (status, answer) = post_json(
        env.gateway.http,
        json!({
            "key": WIDGET_KEY, "language": "es", "name": "Rosa Díaz",
            "email": "rosa@member.example", "topic": "billing", "message": text,
            "submission_id": "5b0f3c1e-1111-2222-3333-444455556666"
        }),
    )
    .await;
    assert_eq!(
        (status, &answer["status"]),
        (202, &json!("accepted")),
        "{answer}"
    );
    // The same submission again (a double click): still one message, one interaction.
    let (again, _) = post_json(
        env.gateway.http,
        json!({
            "key": WIDGET_KEY, "language": "es", "name": "Rosa Díaz",
            "email": "rosa@member.example", "topic": "billing", "message": text,
            "submission_id": "5b0f3c1e-1111-2222-3333-444455556666"
        }),
    )
    .await;
    assert_eq!(again, 202);
    let interactions = env.wait_for_email_interactions(1).await;
    assert_eq!(interactions.len(), 1, "one submission, one interaction");
    let ix = &interactions[0];
    assert_eq!(
        ix.language,
        v1::Language::Es as i32,
        "the router heard Spanish"
    );
    let thread = env
        .email_intake()
        .await
        .get_thread(v1::GetThreadRequest {
            interaction_id: ix.id.clone(),
        })
        .await
        .expect("the thread is kept")
        .into_inner();
    let from_member: Vec<_> = thread
        .messages
        .iter()
        .filter(|m| m.direction == v1::EmailDirection::Inbound as i32)
        .collect();
    assert_eq!(from_member.len(), 1, "{thread:?}");
    assert_eq!(from_member[0].body, text);
    assert_eq!(
        from_member[0].subject,
        "Formulario de contacto: facturación"
    );

    // The agent answers: by email, to the address the member gave.
    env.email_intake()
        .await
        .reply_email(v1::ReplyEmailRequest {
            interaction_id: ix.id.clone(),
            agent_id: "ana".into(),
            body: "Hola Rosa, el cobro corresponde a su deducible.".into(),
        })
        .await
        .expect("the agent's reply is sent by email");
    let both = |notifications: &[v1::NotificationRequested]| {
        notifications.iter().any(|n| n.template == "agent_reply")
            && notifications.iter().any(|n| n.template == "after_hours")
    };
    careline_testkit::assert_eventually!(
        within: ROUTED_WITHIN,
        both(&env.notifications().await),
        "an after-hours answer and the agent's reply are requested"
    );
    for notification in &env.notifications().await {
        assert_eq!(notification.to_address, "rosa@member.example");
        assert_eq!(notification.interaction_id, ix.id);
    }

    // The plain page posts to itself, form-encoded, and gets a page back.
    let (status, head, page) = http(
        env.gateway.http,
        "POST",
        &format!("/contact?key={WIDGET_KEY}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(&[
            ("language", "en"),
            ("name", ""),
            ("email", "pat@member.example"),
            ("topic", "coverage"),
            (
                "message",
                "Is my physical therapy covered? <script>alert(1)</script>",
            ),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{head}"
    );
    assert!(
        page.contains("We received your message and will answer by email"),
        "{page}"
    );
    env.wait_for_email_interactions(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_contact_forms_get_a_clear_error_naming_the_field_and_create_nothing() {
    let env = ContactPlatform::start().await;
    let good = json!({
        "key": WIDGET_KEY, "language": "es", "email": "rosa@member.example",
        "topic": "billing", "message": "Una pregunta"
    });
    let with = |field: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("email", json!("")), 400, Some("email")),
        (
            with("email", json!("rosa@member.example\r\nBcc: x@evil.example")),
            400,
            Some("email"),
        ),
        (
            with("name", json!("Rosa\r\nBcc: x@evil.example")),
            400,
            Some("name"),
        ),
        (with("message", json!("  ")), 400, Some("message")),
        (
            with("message", json!("a".repeat(10_001))),
            400,
            Some("message"),
        ),
        (with("topic", json!("Billing: now")), 400, Some("topic")),
        (with("language", json!("fr")), 400, Some("language")),
        (with("key", json!("no-such-widget-key")), 404, Some("key")),
    ];
    for (body, status, field) in cases {
        let (got, answer) = post_json(env.gateway.http, body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert_eq!(answer["field"].as_str(), field, "{answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    // Not JSON at all, and a body over the limit.
    let (status, _, _) = http(
        env.gateway.http,
        "POST",
        "/v1/contact",
        &[("Content-Type", "application/json")],
        "{not json",
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = http(
        env.gateway.http,
        "POST",
        "/v1/contact",
        &[("Content-Type", "text/plain")],
        "hello",
    )
    .await;
    assert_eq!(status, 415);
    // A site not in the widget's allowed_origins may not post for it.
    let (status, _, _) = http(
        env.gateway.http,
        "POST",
        "/v1/contact",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "https://evil.example"),
        ],
        &good.to_string(),
    )
    .await;
    assert_eq!(status, 403);
    // The plain page gets a page in the member's language, saying what to fix.
    let (status, _, page) = http(
        env.gateway.http,
        "POST",
        &format!("/contact?key={WIDGET_KEY}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(&[
            ("language", "es"),
            ("email", "no-es-un-correo"),
            ("message", "Hola"),
        ]),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("Escriba un correo electrónico como nombre@ejemplo.com."),
        "{page}"
    );
    // A valid one afterwards is the only interaction.
    let (status, _) = post_json(env.gateway.http, good).await;
    assert_eq!(status, 202);
    assert_eq!(env.wait_for_email_interactions(1).await.len(), 1);
}
