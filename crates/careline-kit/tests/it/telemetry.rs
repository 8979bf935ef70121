//! Span export over OTLP to an in-process collector.

use careline_kit::{CommonConfig, GrpcServer, init_telemetry};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::support::{DEADLINE, Running};

/// A minimal OTLP/gRPC collector that hands every export to the test.
struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let _ = self.0.send(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

/// (service.name, span name) of every span in an export.
fn spans(export: &ExportTraceServiceRequest) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for resource_spans in &export.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|v| match v {
                Value::StringValue(s) => s.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                out.push((service.clone(), span.name.clone()));
            }
        }
    }
    out
}

/// The only test that installs the process-wide subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_otlp_collector_and_a_second_init_is_a_noop() {
    let (exports_tx, mut exports) = mpsc::unbounded_channel();
    let collector = Running::start(
        GrpcServer::new().add_service(TraceServiceServer::new(Collector(exports_tx))),
    )
    .await;
    let config = CommonConfig {
        otlp_endpoint: Some(format!("http://{}", collector.addr)),
        // Only this test's spans: the collector's own spans would be exported in a loop.
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

    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            let export = exports.recv().await.expect("collector running");
            if let Some(found) = spans(&export)
                .into_iter()
                .find(|(_, name)| name == "kit_test_operation")
            {
                return found;
            }
        }
    })
    .await
    .expect("span exported before the deadline");
    assert_eq!(found.0, "kit-test");

    collector.shutdown.trigger();
    collector.stopped().await.expect("collector stops");
}
