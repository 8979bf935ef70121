//! The Prometheus endpoint every service exposes.
//!
//! Code records with the `metrics` facade (`metrics::counter!(...)`). The process has one
//! recorder, installed on first use by [`prometheus_handle`] (idempotent, so `careline up`'s
//! services share it), and [`serve_metrics`] serves `GET /metrics` (text exposition format) and
//! `GET /healthz` until shutdown, over TLS when the service has a certificate.
//!
//! `GET /readyz` answers 200 while every gRPC server of the process reports SERVING as its
//! overall health (Redis and NATS reachable, not draining) and 503 otherwise: kubelet gRPC
//! probes cannot speak TLS, so a service serving TLS is probed for readiness here, over HTTPS.
//! The servers and this endpoint meet in a process-wide table, like the metrics recorder: one
//! process is one pod.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::KitError;
use crate::tls::Tls;

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALL: Mutex<()> = Mutex::new(());
/// The overall health of each gRPC server of the process, by [`Readiness`] id.
static SERVING: Mutex<BTreeMap<u64, bool>> = Mutex::new(BTreeMap::new());
static NEXT_SERVER: AtomicU64 = AtomicU64::new(0);

/// A gRPC server's row in the `/readyz` table: not serving until [`Readiness::set`] says so,
/// removed when dropped.
#[derive(Debug)]
pub(crate) struct Readiness(u64);

impl Readiness {
    pub(crate) fn register() -> Self {
        let id = NEXT_SERVER.fetch_add(1, Ordering::Relaxed);
        serving_table().insert(id, false);
        Readiness(id)
    }

    pub(crate) fn set(&self, serving: bool) {
        serving_table().insert(self.0, serving);
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        serving_table().remove(&self.0);
    }
}

fn serving_table() -> std::sync::MutexGuard<'static, BTreeMap<u64, bool>> {
    SERVING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether the process has a gRPC server and every one is SERVING.
pub fn ready() -> bool {
    let table = serving_table();
    !table.is_empty() && table.values().all(|serving| *serving)
}

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

/// The `/metrics`, `/healthz` and `/readyz` routes, for embedding in another axum server.
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
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|| async {
                if ready() {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        ))
}

/// Serves the metrics routes on `listener` until `shutdown` completes, over TLS when `tls`
/// has a certificate (never asking for a client certificate: kubelet probes have none).
pub async fn serve_metrics(
    listener: TcpListener,
    tls: Tls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), KitError> {
    let router = metrics_router()?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = tls.serves_tls(), "metrics endpoint listening");
    }
    crate::tls::serve_http(listener, router, &tls, shutdown).await?;
    Ok(())
}

/// Binds `addr` and serves the metrics routes until `shutdown` completes.
pub async fn serve_metrics_on(
    addr: SocketAddr,
    tls: Tls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), KitError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| KitError::Bind { addr, source })?;
    serve_metrics(listener, tls, shutdown).await
}
