//! W3C trace context (`traceparent`, `tracestate`) carried in NATS headers, so one
//! trace follows a contact from the publishing service to every consumer.
//!
//! The W3C propagator is used directly rather than the global one: the bus must
//! speak the same header format whatever a binary installed globally.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Writes the trace context of `span` into `headers` (nothing if `span` is not traced).
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let cx = span.context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the trace context found in `headers`, if any.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let Some(headers) = headers else { return };
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if cx.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed: nothing to link then.
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` of the current span ("" when not traced), for state
/// that is written now and published later (the routing outbox).
pub fn current_traceparent() -> String {
    let mut headers = HeaderMap::new();
    inject(&tracing::Span::current(), &mut headers);
    headers
        .get("traceparent")
        .map(|value| value.as_str().to_owned())
        .unwrap_or_default()
}

/// A span named `name` that continues the trace of a stored `traceparent`
/// (if valid) and links to `linked` when that is a valid context of another
/// trace: an interaction's event continues the contact's trace and links the
/// request that caused it (see the crate README, "Tracing").
pub fn span_from_traceparent(name: &str, traceparent: &str, linked: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "bus.relay",
        otel.name = %name,
        subject = tracing::field::Empty,
        event_id = tracing::field::Empty,
    );
    let parent = stored_context(traceparent);
    if let Some(parent) = &parent {
        // Fails only when no OpenTelemetry layer is installed: nothing to link then.
        let _ =
            span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent.clone()));
    }
    if let Some(link) = stored_context(linked)
        && parent.is_none_or(|parent| parent.trace_id() != link.trace_id())
    {
        span.add_link(link);
    }
    span
}

/// The span context of a stored `traceparent`, if it is a valid one.
fn stored_context(traceparent: &str) -> Option<SpanContext> {
    if traceparent.is_empty() {
        return None;
    }
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", traceparent);
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}
