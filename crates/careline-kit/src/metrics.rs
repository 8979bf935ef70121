//! The Prometheus endpoint every service exposes.
//!
//! Code records with the `metrics` facade (`metrics::counter!(...)`). The process has one
//! recorder, installed on first use by [`prometheus_handle`] (idempotent, so `careline up`'s
//! services share it), and [`serve_metrics`] serves `GET /metrics` (text exposition format) and
//! `GET /healthz` until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::KitError;

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALL: Mutex<()> = Mutex::new(());

/// The process's Prometheus handle, installing the global recorder on first call.
///
/// Fails only if a different metrics recorder was installed first.
pub fn prometheus_handle() -> Result<PrometheusHandle, KitError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let _installing = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| KitError::MetricsRecorder(e.to_string()))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// The current metrics in Prometheus text format.
pub fn render() -> Result<String, KitError> {
    let handle = prometheus_handle()?;
    handle.run_upkeep();
    Ok(handle.render())
}

/// The `/metrics` + `/healthz` routes, for embedding in another axum server.
pub fn metrics_router() -> Result<Router, KitError> {
    let handle = prometheus_handle()?;
    Ok(Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    // Without the exporter's HTTP listener nobody else drains histograms.
                    handle.run_upkeep();
                    (
                        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
                        handle.render(),
                    )
                        .into_response()
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" })))
}

/// Serves the metrics routes on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), KitError> {
    let router = metrics_router()?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics endpoint listening");
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Binds `addr` and serves the metrics routes until `shutdown` completes.
pub async fn serve_metrics_on(
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), KitError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| KitError::Bind { addr, source })?;
    serve_metrics(listener, shutdown).await
}
