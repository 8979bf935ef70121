//! Span export over OTLP to a real OTLP/gRPC receiver.

use careline_kit::{CommonConfig, TracingConfig, init_telemetry};
use careline_testkit::OtlpReceiver;

use crate::support::DEADLINE;

/// The only test that installs the process-wide subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_otlp_collector_and_a_second_init_is_a_noop() {
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    let config = CommonConfig {
        tracing: TracingConfig {
            otlp_endpoint: Some(receiver.endpoint()),
            ..TracingConfig::default()
        },
        // Only this test's spans: the receiver's own spans would be exported in a loop.
        log_filter: "it=info".to_owned(),
        ..CommonConfig::default()
    };
    config.validate().expect("valid config");

    let guard = init_telemetry("kit-test", &config).expect("first init");
    let second = init_telemetry("another-service", &config).expect("second init is a no-op");
    drop(second);

    tracing::info_span!("kit_test_operation").in_scope(|| tracing::info!("inside"));
    // Dropping the guard flushes; it blocks, so not on a runtime worker.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .expect("flush");

    let exported = || {
        receiver
            .spans()
            .into_iter()
            .find(|span| span.name == "kit_test_operation")
    };
    careline_testkit::eventually(DEADLINE, "the span is exported", || async {
        exported().is_some()
    })
    .await
    .expect("span exported before the deadline");
    assert_eq!(exported().expect("exported").service, "kit-test");
}
