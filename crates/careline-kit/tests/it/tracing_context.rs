//! A caller's traceparent becomes the parent of the server span, and an outgoing call carries
//! the current one.

use careline_kit::GrpcServer;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::{Probe, Running};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// Current-thread runtime: the test's thread-local subscriber sees the server's spans.
#[tokio::test(flavor = "current_thread")]
async fn grpc_span_continues_the_callers_traceparent() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);

    let running = Running::start(
        GrpcServer::new().add_service(Probe::new(|_| async { Ok(tonic::Response::new(())) })),
    )
    .await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    Probe::call(running.channel().await, &[("traceparent", &traceparent)])
        .await
        .expect("call succeeds");
    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");

    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let span = spans
        .iter()
        .find(|s| s.name == "careline.test.Probe/Call")
        .unwrap_or_else(|| {
            panic!(
                "no grpc span in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(span.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(span.parent_span_id.to_string(), PARENT_SPAN_ID);
    let method = span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "rpc.method")
        .map(|kv| kv.value.to_string());
    assert_eq!(method.as_deref(), Some("Call"));
}

/// What email-intake and chat-gateway do before calling the router: the called service's span
/// continues the caller's trace.
#[tokio::test(flavor = "current_thread")]
async fn an_outgoing_call_carries_the_current_trace_to_the_called_service() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);

    let running = Running::start(
        GrpcServer::new().add_service(Probe::new(|_| async { Ok(tonic::Response::new(())) })),
    )
    .await;
    let caller = tracing::info_span!("intake");
    let caller_trace = caller.context().span().span_context().trace_id();
    let mut metadata = tonic::metadata::MetadataMap::new();
    caller.in_scope(|| careline_kit::grpc::inject_trace_context(&mut metadata));
    let traceparent = metadata
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("a traceparent is added")
        .to_owned();
    Probe::call(running.channel().await, &[("traceparent", &traceparent)])
        .await
        .expect("call succeeds");
    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");

    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let server = spans
        .iter()
        .find(|s| s.name == "careline.test.Probe/Call")
        .expect("the called service's span");
    assert_eq!(server.span_context.trace_id(), caller_trace);
}
