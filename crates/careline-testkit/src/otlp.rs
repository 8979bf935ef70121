//! [`OtlpReceiver`]: a real OTLP/gRPC trace receiver (opentelemetry-proto's collector
//! `TraceService` on a loopback port) that keeps every span services export, so tests can
//! check what reached a collector: which service, which trace, which words.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use careline_kit::{GrpcServer, Shutdown};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// One exported span, flattened to what tests look at.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The exporter's `service.name` resource attribute.
    pub service: String,
    /// The span name.
    pub name: String,
    /// Trace id, lower-case hex (as in a `traceparent`).
    pub trace_id: String,
    /// Span id, lower-case hex.
    pub span_id: String,
    /// Parent span id, lower-case hex; empty for a root span.
    pub parent_span_id: String,
    /// Attributes, values rendered as text.
    pub attributes: Vec<(String, String)>,
    /// Events: name and attributes.
    pub events: Vec<(String, Vec<(String, String)>)>,
    /// Trace ids (hex) of the spans this one links to.
    pub linked_trace_ids: Vec<String>,
}

impl ReceivedSpan {
    /// Every piece of text the span carries: its name, attribute keys and values, event names
    /// and their attributes (what a person reading the trace would see).
    pub fn texts(&self) -> Vec<&str> {
        let mut texts = vec![self.name.as_str()];
        let pairs = self
            .attributes
            .iter()
            .chain(self.events.iter().flat_map(|(_, attributes)| attributes));
        for (key, value) in pairs {
            texts.push(key);
            texts.push(value);
        }
        texts.extend(self.events.iter().map(|(name, _)| name.as_str()));
        texts
    }

    /// The value of attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A trace receiver serving OTLP/gRPC on a loopback port until dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    shutdown: Shutdown,
}

impl OtlpReceiver {
    /// Starts the receiver on a free loopback port.
    pub async fn start() -> anyhow::Result<OtlpReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let shutdown = Shutdown::new();
        let server = GrpcServer::new().add_service(TraceServiceServer::new(Receiver {
            spans: spans.clone(),
        }));
        let stop = shutdown.wait();
        tokio::spawn(async move {
            if let Err(error) = server.serve(listener, stop).await {
                eprintln!("OTLP receiver stopped: {error}");
            }
        });
        Ok(OtlpReceiver {
            addr,
            spans,
            shutdown,
        })
    }

    /// The endpoint exporters are given (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans lock").clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

struct Receiver {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let received = flatten(request.into_inner());
        self.spans.lock().expect("spans lock").extend(received);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn flatten(export: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in export.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| pairs(r.attributes))
            .unwrap_or_default();
        let service = resource
            .into_iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v)
            .unwrap_or_default();
        for span in resource_spans
            .scope_spans
            .into_iter()
            .flat_map(|scope| scope.spans)
        {
            out.push(ReceivedSpan {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes: pairs(span.attributes),
                events: span
                    .events
                    .into_iter()
                    .map(|event| (event.name, pairs(event.attributes)))
                    .collect(),
                linked_trace_ids: span.links.iter().map(|l| hex(&l.trace_id)).collect(),
            });
        }
    }
    out
}

fn pairs(attributes: Vec<KeyValue>) -> Vec<(String, String)> {
    attributes
        .into_iter()
        .map(|kv| (kv.key, kv.value.map(text).unwrap_or_default()))
        .collect()
}

fn text(value: AnyValue) -> String {
    match value.value {
        Some(any_value::Value::StringValue(s)) => s,
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(&b).into_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
