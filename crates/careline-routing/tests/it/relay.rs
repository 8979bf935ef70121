//! The outbox relay: events reach NATS once each, in order, carrying the
//! trace of the request that caused them.

use std::time::Duration;

use careline_bus::{Publisher, ensure_streams};
use careline_proto::v1;
use careline_routing::{OutboxRelay, RoutingStore};
use careline_testkit::NatsServer;
use futures::StreamExt;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::env::Env;

#[tokio::test]
async fn relayed_events_carry_the_requests_trace_and_a_dedupe_id() {
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("careline-routing-test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = Env::new(|_| {}).await;
    let nats = NatsServer::start().await.expect("nats-server starts");
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(&js).await.unwrap();
    let mut created = client
        .subscribe(format!("careline.{}.interaction.created", env.tenant()))
        .await
        .unwrap();

    let request = tracing::info_span!("create_interaction");
    let request_trace = request.context().span().span_context().trace_id();
    let id = env.chat("billing").instrument(request).await;

    let relay = OutboxRelay::new(
        RoutingStore::connect(&env.redis.url())
            .await
            .unwrap()
            .connection(),
        Publisher::new(js),
        "test-relay",
    );
    relay.ensure_group(env.tenant()).await.unwrap();
    let tenants = vec![env.tenant().to_string()];
    assert_eq!(
        relay.relay_new(&tenants, 100).await.unwrap(),
        1,
        "one event: created"
    );

    let message = tokio::time::timeout(Duration::from_secs(10), created.next())
        .await
        .expect("the event arrives")
        .expect("subscription open");
    let event = v1::Event::decode(message.payload.clone()).unwrap();
    let Some(v1::event::Payload::Interaction(ix)) = &event.payload else {
        panic!("interaction event")
    };
    assert_eq!(ix.interaction_id, id);
    assert_eq!(
        event.event_id,
        format!("{}:{}", env.tenant(), event.sequence)
    );
    let headers = message.headers.expect("headers");
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(event.event_id.as_str())
    );
    let traceparent = headers
        .get("traceparent")
        .expect("traceparent")
        .as_str()
        .to_string();
    assert!(
        traceparent.contains(&request_trace.to_string()),
        "{traceparent} continues trace {request_trace}"
    );
    assert_eq!(
        relay.relay_new(&tenants, 10).await.unwrap(),
        0,
        "nothing is published twice"
    );
}
