//! Logs and traces, set up once per process.
//!
//! [`init_telemetry`] installs the global tracing subscriber: an `EnvFilter` from
//! [`CommonConfig::log_filter`] (`RUST_LOG`), a text or JSON fmt layer, and, when
//! [`TracingConfig::otlp_endpoint`] (`OTEL_EXPORTER_OTLP_ENDPOINT`) is set, a
//! tracing-opentelemetry layer exporting spans over OTLP/gRPC with a batch exporter, sampled
//! as [`TracingConfig::sampler`] (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`) says. The
//! global text-map propagator is always W3C TraceContext, so `traceparent` crosses gRPC metadata
//! and NATS headers even when this process exports nothing.
//!
//! `careline up` runs several services in one process and each may call this: the first call
//! wins, later calls return an inert guard.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::KitError;
use crate::config::{CommonConfig, ENV_LOG_FILTER, LogFormat, TraceSampler, TracingConfig};

/// How long dropping the guard waits for buffered spans to reach the collector.
pub const SPAN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Keeps the span exporter alive; dropping it flushes and shuts the exporter down.
///
/// Only the guard from the first [`init_telemetry`] call owns anything; hold it in `main` until
/// every service has stopped.
#[must_use = "dropping the guard stops span export"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // The batch exporter flushes on its own thread; with a current-thread runtime the
            // export cannot progress while we block here, hence the bounded wait.
            if let Err(error) = provider.shutdown_with_timeout(SPAN_FLUSH_TIMEOUT) {
                eprintln!("careline: flushing spans on shutdown failed: {error}");
            }
        }
    }
}

/// Installs logging and tracing for `service_name` (the OTLP `service.name`).
///
/// Call it inside the tokio runtime: the OTLP/gRPC exporter needs one. A second call in the
/// same process changes nothing and returns an inert guard. If another global subscriber is
/// already installed (e.g. by a test harness), ours is not installed and the guard is inert.
pub fn init_telemetry(
    service_name: &str,
    config: &CommonConfig,
) -> Result<TelemetryGuard, KitError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    if INITIALISED.swap(true, Ordering::AcqRel) {
        return Ok(TelemetryGuard { provider: None });
    }
    let result = install(service_name, config);
    if result.is_err() {
        INITIALISED.store(false, Ordering::Release);
    }
    result
}

fn install(service_name: &str, config: &CommonConfig) -> Result<TelemetryGuard, KitError> {
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| {
        KitError::config(
            ENV_LOG_FILTER,
            "log-filter",
            format!("{:?} is not a valid filter: {e}", config.log_filter),
        )
    })?;
    let fmt_layer = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };

    let provider = match &config.tracing.otlp_endpoint {
        Some(endpoint) => Some(otlp_provider(service_name, endpoint, &config.tracing)?),
        None => None,
    };
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name.to_owned()))
    });

    let installed = tracing_subscriber::registry()
        .with(otel_layer)
        .with(fmt_layer)
        .with(filter)
        .try_init();
    match installed {
        Ok(()) => {
            if let Some(provider) = &provider {
                opentelemetry::global::set_tracer_provider(provider.clone());
            }
            tracing::info!(
                service = service_name,
                otlp = config.tracing.otlp_endpoint.is_some(),
                "telemetry initialised"
            );
            Ok(TelemetryGuard { provider })
        }
        Err(_) => {
            // Someone else owns the global subscriber; our exporter would never see a span.
            if let Some(provider) = provider {
                let _ = provider.shutdown();
            }
            Ok(TelemetryGuard { provider: None })
        }
    }
}

fn otlp_provider(
    service_name: &str,
    endpoint: &str,
    tracing: &TracingConfig,
) -> Result<SdkTracerProvider, KitError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| KitError::Telemetry(format!("OTLP exporter for {endpoint}: {e}")))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler(tracing))
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}

/// The SDK sampler of the configured one (never read from the environment by the SDK).
fn sampler(tracing: &TracingConfig) -> Sampler {
    let ratio = || Sampler::TraceIdRatioBased(tracing.sample_ratio.get());
    match tracing.sampler {
        TraceSampler::AlwaysOn => Sampler::AlwaysOn,
        TraceSampler::AlwaysOff => Sampler::AlwaysOff,
        TraceSampler::TraceIdRatio => ratio(),
        TraceSampler::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        TraceSampler::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        TraceSampler::ParentBasedTraceIdRatio => Sampler::ParentBased(Box::new(ratio())),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::Context;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample as _};

    use super::sampler;
    use crate::config::{SampleRatio, TraceSampler, TracingConfig};

    /// Whether `config`'s sampler records a span under `parent` (a remote parent whose sampled
    /// flag is given, or none: a new trace).
    fn records(config: &TracingConfig, parent: Option<bool>) -> bool {
        let parent = parent.map(|sampled| {
            let flags = if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            };
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(7),
                SpanId::from(7),
                flags,
                true,
                TraceState::default(),
            ))
        });
        let result = sampler(config).should_sample(
            parent.as_ref(),
            TraceId::from(7),
            "span",
            &SpanKind::Internal,
            &[],
            &[],
        );
        result.decision == SamplingDecision::RecordAndSample
    }

    #[test]
    fn parent_based_samplers_follow_the_parent_and_ratio_decides_new_traces() {
        let config = |sampler, ratio: &str| TracingConfig {
            sampler,
            sample_ratio: ratio.parse::<SampleRatio>().expect("a valid ratio"),
            ..TracingConfig::default()
        };
        let none = config(TraceSampler::ParentBasedTraceIdRatio, "0");
        assert!(!records(&none, None), "ratio 0 starts no trace");
        assert!(records(&none, Some(true)), "a recorded contact stays whole");
        assert!(!records(&none, Some(false)));
        let all = config(TraceSampler::ParentBasedTraceIdRatio, "1");
        assert!(records(&all, None));
        assert!(
            !records(&all, Some(false)),
            "an unrecorded contact stays out"
        );
        assert!(records(
            &config(TraceSampler::ParentBasedAlwaysOn, "0"),
            None
        ));
        assert!(!records(
            &config(TraceSampler::ParentBasedAlwaysOff, "1"),
            None
        ));
        assert!(records(
            &config(TraceSampler::ParentBasedAlwaysOff, "1"),
            Some(true)
        ));
        assert!(records(&config(TraceSampler::AlwaysOn, "0"), Some(false)));
        assert!(!records(&config(TraceSampler::AlwaysOff, "1"), Some(true)));
        assert!(!records(
            &config(TraceSampler::TraceIdRatio, "0"),
            Some(true)
        ));
    }
}
