//! One trace per contact: the router and presence binaries export their spans
//! over OTLP/gRPC to a real receiver, and everything that happens to one
//! contact (its creation, the offer presence streams, the offer timing out
//! with no request behind it) lands under the trace of its creation, while no
//! span carries a word of what the member wrote.

use std::collections::BTreeSet;
use std::time::Duration;

use careline_domain::Language;
use careline_domain::tenant::{PerChannel, PerChannelOverride};
use careline_e2e::tenant::{self, API_KEY, TENANT};
use careline_e2e::{ProcessPlatform, client};
use careline_kit::config::{ENV_LOG_FILTER, ENV_OTLP_ENDPOINT};
use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind as EventKind;
use careline_proto::v1::agent_session_request::Kind as RequestKind;
use careline_proto::v1::presence_client::PresenceClient;
use careline_testkit::{AppendFsync, OtlpReceiver, ReceivedSpan};
use tokio_stream::wrappers::ReceiverStream;

/// How long the offer, its timeout and the span exports may take.
const WITHIN: Duration = Duration::from_secs(30);
/// Words seeded in every member-written field; no span may contain one.
const MARKERS: [&str; 6] = [
    "zqxreasonmark",
    "zqxsummarymark",
    "zqxattrkeymark",
    "zqxattrvaluemark",
    "zqxnamemark",
    "zqxplanmark",
];
/// The OpenTelemetry SDK's batch delay, shortened so spans arrive promptly.
const BATCH_DELAY_MS: &str = "200";

/// The next event of an agent's session stream.
async fn next_event(session: &mut tonic::Streaming<v1::AgentSessionEvent>) -> EventKind {
    tokio::time::timeout(WITHIN, session.message())
        .await
        .expect("a session event before the deadline")
        .expect("session open")
        .and_then(|event| event.kind)
        .expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_router_presence_and_timeout_spans_share_its_creation_trace_without_member_text()
{
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    let mut config = tenant::demo();
    config.routing.offer_timeout_secs = PerChannel {
        voice: 1,
        chat: 1,
        email: 1,
    };
    config.agents = tenant::agents(
        1,
        &[("billing", 5)],
        &[Language::En],
        PerChannelOverride::default(),
    );
    let agent_id = config.agents[0].id.clone();
    let platform = ProcessPlatform::start_with_env(
        config,
        1,
        1,
        AppendFsync::EverySec,
        &[
            (ENV_OTLP_ENDPOINT, receiver.endpoint()),
            (ENV_LOG_FILTER, "info".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", BATCH_DELAY_MS.into()),
        ],
    )
    .await
    .expect("platform starts");

    // The agent logs in first, so the contact is offered at once.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(v1::AgentSessionRequest {
        kind: Some(RequestKind::Login(v1::Login {
            tenants: vec![v1::TenantLogin {
                tenant_id: TENANT.into(),
                agent_id: agent_id.clone(),
                agent_key: tenant::agent_key(&agent_id),
            }],
            initial_state: v1::AgentState::Available as i32,
        })),
    })
    .await
    .expect("login queued");
    let mut session = PresenceClient::new(client::stream_channel(platform.presence[0].addr))
        .open_agent_session(ReceiverStream::new(rx))
        .await
        .expect("session opens")
        .into_inner();
    assert!(matches!(
        next_event(&mut session).await,
        EventKind::Started(_)
    ));

    let mut router = client::router(platform.routers[0].addr, API_KEY);
    let created = router
        .create_interaction(v1::CreateInteractionRequest {
            channel: v1::Channel::Chat as i32,
            queue_id: "billing".into(),
            language: v1::Language::En as i32,
            member_ref: "member-trace-1".into(),
            idempotency_key: "trace-e2e-1".into(),
            context: Some(v1::InteractionContext {
                reason: format!("billing {}", MARKERS[0]),
                summary: format!("my bill is wrong {}", MARKERS[1]),
                attributes: [(MARKERS[2].to_string(), MARKERS[3].to_string())].into(),
                member_profile: Some(v1::MemberProfile {
                    display_name: MARKERS[4].into(),
                    plan_name: MARKERS[5].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("contact created")
        .into_inner();
    let interaction_id = created.interaction.expect("interaction").id;

    // Offered, then left unanswered: the router's timer takes it back.
    let offer = loop {
        if let EventKind::Offer(offer) = next_event(&mut session).await {
            break offer;
        }
    };
    let offered = offer.interaction.expect("the offered contact");
    assert_eq!(offered.id, interaction_id);
    assert!(
        offered
            .context
            .is_some_and(|context| context.summary.contains(MARKERS[1])),
        "the member's words went through the services the spans came from"
    );
    loop {
        if let EventKind::Revoked(revoked) = next_event(&mut session).await {
            assert_eq!(revoked.offer_id, offer.offer_id);
            assert_eq!(revoked.reason, "timed_out");
            break;
        }
    }

    let contact_trace = || {
        receiver
            .spans()
            .into_iter()
            .find(|s| s.name == "publish interaction.created")
            .map(|s| s.trace_id)
    };
    let in_trace = |trace: &str| -> Vec<ReceivedSpan> {
        receiver
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace)
            .collect()
    };
    let all_there = |spans: &[ReceivedSpan]| {
        let has = |service: &str, name: &str| {
            spans
                .iter()
                .any(|s| s.service == service && s.name.contains(name))
        };
        let presence_deliveries = spans
            .iter()
            .filter(|s| s.service == "careline-presence" && s.name == "presence.deliver")
            .count();
        // Router and presence replicas both run the routing worker: the
        // timeout is relayed by whichever claimed it.
        let timed_out = spans
            .iter()
            .any(|s| s.name == "publish interaction.offer_timed_out");
        has("careline-router", "CreateInteraction")
            && has("careline-router", "publish interaction.created")
            && timed_out
            && presence_deliveries >= 2
    };
    careline_testkit::eventually(WITHIN, "the contact's spans are exported", || async {
        contact_trace().is_some_and(|trace| all_there(&in_trace(&trace)))
    })
    .await
    .unwrap_or_else(|error| {
        let seen: BTreeSet<_> = receiver
            .spans()
            .into_iter()
            .map(|s| format!("{} {} {} {}", s.trace_id, s.span_id, s.service, s.name))
            .collect();
        panic!("{error}; spans received: {seen:#?}")
    });
    let trace = contact_trace().expect("the contact's trace");
    let timed_out = in_trace(&trace)
        .into_iter()
        .find(|s| s.name == "publish interaction.offer_timed_out")
        .expect("the timeout's span");
    assert!(
        !timed_out.parent_span_id.is_empty(),
        "the timer's span hangs under the contact's creation"
    );

    let spans = receiver.spans();
    let leaks: Vec<_> = spans
        .iter()
        .flat_map(|span| span.texts().into_iter().map(move |text| (span, text)))
        .filter(|(_, text)| MARKERS.iter().any(|marker| text.contains(marker)))
        .map(|(span, text)| format!("{} {}: {text}", span.service, span.name))
        .collect();
    assert!(leaks.is_empty(), "member text in spans: {leaks:#?}");
    println!(
        "{} spans received, {} in the contact's trace {trace}",
        spans.len(),
        in_trace(&trace).len()
    );
}
