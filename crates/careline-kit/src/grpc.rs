//! The tonic server every service runs, with what every service needs added once here.
//!
//! [`GrpcServer`] always serves, next to the services given with [`GrpcServer::add_service`]:
//! - gRPC health (`grpc.health.v1.Health`): "" and each added service start SERVING; a
//!   [`HealthHandle`] lets the service report NOT_SERVING while Redis or NATS is unreachable,
//!   and everything turns NOT_SERVING as soon as shutdown starts; the overall status is also
//!   `GET /readyz` on the metrics port (see [`crate::metrics`]);
//! - server reflection v1 and v1alpha over every Careline proto, the health proto and the
//!   `google.rpc` error details, so `grpcurl -plaintext HOST:PORT list` works without proto
//!   files and grpcurl decodes the details of an error (`ErrorInfo`, `LocalizedMessage`, ...);
//! - a `grpc` span per request whose parent is the caller's W3C `traceparent`, carrying the
//!   method (never the request body).
//!
//! Outgoing calls between services add the caller's `traceparent` with
//! [`inject_trace_context`], so the called service's span continues the caller's trace.
//!
//! With [`GrpcServer::configure`] it speaks TLS (mTLS with a client CA) as the service's
//! [`crate::tls::TlsConfig`] says; plaintext otherwise.
//!
//! [`GrpcServer::serve`] runs on a caller-bound listener (tests bind `127.0.0.1:0`) until the
//! shutdown future completes, then stops accepting and lets in-flight calls finish within the
//! grace period.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt as _;
use opentelemetry::propagation::{Extractor, Injector};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic::transport::server::Connected;
use tonic_health::server::{HealthReporter, HealthService};
use tracing::instrument::{Instrument as _, Instrumented};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::config::{DEFAULT_SHUTDOWN_GRACE_SECS, ENV_REQUEST_TIMEOUT_SECS, ServerLimits};
use crate::metrics::Readiness;
use crate::tls::Tls;
use crate::{CommonConfig, KitError};

pub use tonic_health::ServingStatus;

/// Builds and runs a service's gRPC server; see the module docs for what it adds.
pub struct GrpcServer {
    routes: RoutesBuilder,
    health: HealthHandle,
    descriptor_sets: Vec<&'static [u8]>,
    grace: Duration,
    limits: ServerLimits,
    readiness: Option<tokio::sync::watch::Receiver<bool>>,
    tls: Tls,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("health", &self.health)
            .field("grace", &self.grace)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Default for GrpcServer {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcServer {
    /// A server with health and reflection only.
    pub fn new() -> Self {
        Self {
            routes: RoutesBuilder::default(),
            health: HealthHandle::new(),
            descriptor_sets: vec![
                careline_proto::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                tonic_types::pb::FILE_DESCRIPTOR_SET,
            ],
            grace: Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS),
            limits: ServerLimits::default(),
            readiness: None,
            tls: Tls::default(),
        }
    }

    /// Applies what every service's config says about its server: the shutdown grace period,
    /// the limits and TLS (see [`crate::tls`]); fails naming the setting when a TLS file is
    /// unusable.
    pub fn configure(self, common: &CommonConfig) -> Result<Self, KitError> {
        Ok(self
            .shutdown_grace(common.shutdown_grace())
            .limits(common.server)
            .tls(common.tls.load()?))
    }

    /// Serves TLS with `tls`'s certificate, requiring client certificates when it has a
    /// client CA; [`Tls::default`] (the default) is plaintext.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Serves `svc` (a generated `FooServer`, possibly wrapped with an interceptor) and marks it
    /// SERVING in health.
    pub fn add_service<S>(mut self, svc: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.health.register(S::NAME);
        self.routes.add_service(svc);
        self
    }

    /// Also serves, through reflection, the protos in this encoded `FileDescriptorSet` (for
    /// services whose protos are not in `careline-proto`).
    pub fn register_descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded);
        self
    }

    /// How long in-flight calls may run after shutdown starts (default 20 s); see
    /// [`crate::CommonConfig::shutdown_grace`].
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Streams per connection, request timeout and keepalive (defaults: [`ServerLimits`]).
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Health follows `ready` (e.g. Redis and NATS reachable): SERVING while
    /// true, NOT_SERVING while false, NOT_SERVING for good once shutdown starts.
    pub fn readiness(mut self, ready: tokio::sync::watch::Receiver<bool>) -> Self {
        self.readiness = Some(ready);
        self
    }

    /// The health handle, to report NOT_SERVING while a dependency is down.
    pub fn health(&self) -> HealthHandle {
        self.health.clone()
    }

    /// Serves on `listener` until `shutdown` completes, then drains: new connections are
    /// refused, health turns NOT_SERVING, and in-flight calls get up to the grace period.
    ///
    /// Returns once every connection has closed. Connections still busy when the grace period
    /// ends are closed (their calls fail on the client), with a warning. Long-lived streams
    /// should end themselves when the service's [`crate::Shutdown`] fires rather than rely on
    /// this.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), KitError> {
        let mut reflection = tonic_reflection::server::Builder::configure();
        for set in &self.descriptor_sets {
            reflection = reflection.register_encoded_file_descriptor_set(set);
        }
        let mut reflection_alpha = tonic_reflection::server::Builder::configure();
        for set in &self.descriptor_sets {
            reflection_alpha = reflection_alpha.register_encoded_file_descriptor_set(set);
        }
        let health = self.health.clone();
        let mut routes = self.routes;
        routes
            .add_service(tonic_health::pb::health_server::HealthServer::new(
                HealthService::from_health_reporter(health.reporter.clone()),
            ))
            .add_service(reflection.build_v1()?)
            .add_service(reflection_alpha.build_v1alpha()?);
        health.apply_pending().await;

        if let Ok(addr) = listener.local_addr() {
            tracing::info!(
                %addr,
                tls = self.tls.serves_tls(),
                client_certificates = self.tls.requires_client_certificates(),
                "gRPC server listening"
            );
        }
        let follower = self
            .readiness
            .map(|ready| tokio::spawn(health.clone().follow(ready)));
        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = {
            let health = health.clone();
            async move {
                shutdown.await;
                tracing::info!("gRPC server draining");
                if let Some(follower) = follower {
                    follower.abort();
                    let _ = follower.await;
                }
                health.set_all(ServingStatus::NotServing).await;
                let _ = draining_tx.send(());
            }
        };
        let force_close = CancellationToken::new();
        let incoming = TcpListenerStream::new(listener).map({
            let force_close = force_close.clone();
            move |accepted| {
                accepted.map(|io| {
                    // gRPC replies are small writes: without TCP_NODELAY, Nagle's
                    // algorithm holds them for the client's delayed ACK (~40 ms).
                    if let Err(error) = io.set_nodelay(true) {
                        tracing::debug!(%error, "could not set TCP_NODELAY");
                    }
                    ForceClosable::new(io, &force_close)
                })
            }
        });
        let limits = self.limits;
        let mut server = Server::builder();
        if let Some(tls) = self.tls.grpc_server() {
            server = server.tls_config(tls)?;
        }
        let serve = server
            .max_concurrent_streams(limits.max_streams_per_connection)
            .http2_keepalive_interval(Some(limits.keepalive()))
            .http2_keepalive_timeout(Some(limits.keepalive()))
            .layer(GrpcTraceLayer)
            .layer(RequestTimeoutLayer {
                limit: limits.request_timeout(),
            })
            .layer(DecodeErrorLayer)
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming, signal);
        tokio::pin!(serve);

        tokio::select! {
            result = &mut serve => return result.map_err(KitError::from),
            _ = draining_rx => {}
        }
        if let Ok(result) = tokio::time::timeout(self.grace, &mut serve).await {
            tracing::info!("gRPC server drained");
            return result.map_err(KitError::from);
        }
        tracing::warn!(
            grace_ms = u64::try_from(self.grace.as_millis()).unwrap_or(u64::MAX),
            "closing connections with calls still running at the end of the grace period"
        );
        force_close.cancel();
        match tokio::time::timeout(FORCE_CLOSE_TIMEOUT, serve).await {
            Ok(result) => result.map_err(KitError::from),
            Err(_) => {
                tracing::warn!("gRPC connections did not close after being aborted");
                Ok(())
            }
        }
    }
}

/// How long connections get to close once aborted at the end of the grace period.
pub const FORCE_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// An accepted connection whose reads and writes fail once `closed` fires, so that hyper ends
/// the connection (and drops its in-flight calls) at the end of the grace period: tonic runs
/// connections in detached tasks that would otherwise outlive `serve`.
struct ForceClosable<IO> {
    io: IO,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<IO> ForceClosable<IO> {
    fn new(io: IO, force_close: &CancellationToken) -> Self {
        Self {
            io,
            closed: Box::pin(force_close.clone().cancelled_owned()),
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        match self.closed.as_mut().poll(cx) {
            Poll::Ready(()) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "connection closed: shutdown grace period over",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ForceClosable<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ForceClosable<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for ForceClosable<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Reports the serving status of a server's gRPC services; cheap to clone.
#[derive(Debug, Clone)]
pub struct HealthHandle {
    reporter: HealthReporter,
    services: Arc<Mutex<Services>>,
    /// The overall status as `/readyz` on the metrics port reports it.
    readiness: Arc<Readiness>,
}

#[derive(Debug, Default)]
struct Services {
    names: Vec<&'static str>,
    /// Registered before their SERVING status could be set without waiting.
    pending: Vec<&'static str>,
}

impl HealthHandle {
    fn new() -> Self {
        Self {
            reporter: HealthReporter::new(),
            services: Arc::default(),
            readiness: Arc::new(Readiness::register()),
        }
    }

    fn services(&self) -> std::sync::MutexGuard<'_, Services> {
        self.services
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(&self, name: &'static str) {
        let mut services = self.services();
        services.names.push(name);
        // The reporter's lock is uncontended while the server is being built, so this
        // completes on its first poll; otherwise `serve` sets it before listening.
        let set_now = self
            .reporter
            .set_service_status(name, ServingStatus::Serving)
            .now_or_never();
        if set_now.is_none() {
            services.pending.push(name);
        }
    }

    async fn apply_pending(&self) {
        let pending = std::mem::take(&mut self.services().pending);
        for name in pending {
            self.reporter
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        // The overall status starts SERVING (tonic-health's default) once the server runs.
        self.readiness.set(true);
    }

    /// Sets the overall status ("") and that of every added service, e.g. NOT_SERVING while
    /// Redis is unreachable and SERVING once it is back.
    pub async fn set_all(&self, status: ServingStatus) {
        let names = self.services().names.clone();
        self.reporter.set_service_status("", status).await;
        self.readiness.set(status == ServingStatus::Serving);
        for name in names {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Keeps every status in step with `ready`; stopped by the server when
    /// shutdown starts.
    async fn follow(self, mut ready: tokio::sync::watch::Receiver<bool>) {
        loop {
            let status = if *ready.borrow_and_update() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            self.set_all(status).await;
            if ready.changed().await.is_err() {
                return;
            }
        }
    }

    /// Sets the status of one service (its full name, e.g. `careline.v1.Router`).
    pub async fn set_service(&self, service_name: &str, status: ServingStatus) {
        self.reporter.set_service_status(service_name, status).await;
    }

    /// The underlying tonic-health reporter.
    pub fn reporter(&self) -> &HealthReporter {
        &self.reporter
    }
}

/// Tower layer opening the per-request `grpc` span, parented on the caller's `traceparent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTraceLayer;

impl<S> tower::Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTrace { inner }
    }
}

/// The service made by [`GrpcTraceLayer`].
#[derive(Debug, Clone)]
pub struct GrpcTrace<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for GrpcTrace<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = request_span(request.uri().path(), request.headers());
        // Interceptors run inside `call`; entering here lets them record (e.g. the tenant).
        let future = span.in_scope(|| self.inner.call(request));
        future.instrument(span)
    }
}

/// Answers DEADLINE_EXCEEDED, naming the limit, when a call has not answered (a stream: not
/// started) within the server's request timeout, so one hung dependency cannot pile up
/// calls without bound. (tonic's own `Server::timeout` answers CANCELLED "Timeout expired",
/// which reads as the client's doing.)
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeoutLayer {
    /// The request timeout.
    pub limit: Duration,
}

impl<S> tower::Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout {
            inner,
            limit: self.limit,
        }
    }
}

/// The service made by [`RequestTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    limit: Duration,
}

impl<S, B, RB> tower::Service<http::Request<B>> for RequestTimeout<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limit = self.limit;
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, call).await {
                Ok(answered) => answered,
                Err(_) => {
                    tracing::warn!(
                        limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                        "call refused: over the request timeout"
                    );
                    Ok(tonic::Status::deadline_exceeded(format!(
                        "the server did not answer within its request timeout of {} s \
                         ({ENV_REQUEST_TIMEOUT_SECS}); retry, and tell the operator if it persists",
                        limit.as_secs()
                    ))
                    .into_http())
                }
            }
        })
    }
}

/// Rewrites tonic's own answers to requests it could not decode (before any service code
/// runs) into codes a client can act on: a request over the service's size limit is
/// RESOURCE_EXHAUSTED (tonic answers OUT_OF_RANGE), a malformed one — invalid UTF-8 in a string,
/// a truncated field — INVALID_ARGUMENT naming the field (tonic answers INTERNAL, which reads
/// as a server fault).
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeErrorLayer;

impl<S> tower::Layer<S> for DecodeErrorLayer {
    type Service = DecodeErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeErrors { inner }
    }
}

/// The service made by [`DecodeErrorLayer`].
#[derive(Debug, Clone)]
pub struct DecodeErrors<S> {
    inner: S,
}

type Rewrite<B> = fn(http::Response<B>) -> http::Response<B>;

impl<S, B, RB> tower::Service<http::Request<B>> for DecodeErrors<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = futures::future::MapOk<S::Future, Rewrite<RB>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        futures::TryFutureExt::map_ok(
            self.inner.call(request),
            rewrite_decode_error as Rewrite<RB>,
        )
    }
}

/// See [`DecodeErrorLayer`]: only statuses tonic itself produces for undecodable requests
/// are rewritten; a service's own OUT_OF_RANGE or INTERNAL passes unchanged.
fn rewrite_decode_error<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32);
    let Some(message) = headers.get("grpc-message").map(|v| {
        percent_encoding::percent_decode(v.as_bytes())
            .decode_utf8_lossy()
            .into_owned()
    }) else {
        return response;
    };
    let rewritten = match code {
        Some(tonic::Code::OutOfRange) if message.contains("decoded message length too large") => {
            tonic::Status::resource_exhausted(format!(
                "request too large: {}; send a smaller request",
                message.trim_start_matches("Error, decoded message length too large: ")
            ))
        }
        Some(tonic::Code::Internal) if message.starts_with("failed to decode Protobuf message") => {
            tonic::Status::invalid_argument(format!(
                "the request is not a valid protobuf message of this method ({message}); \
                 strings must be UTF-8"
            ))
        }
        _ => return response,
    };
    if rewritten.add_header(headers).is_err() {
        tracing::debug!("could not rewrite a decode error status");
    }
    response
}

/// The span of one gRPC call: `grpc` named `package.Service/Method` for OpenTelemetry, with the
/// caller's trace as parent. Health and reflection calls (probes) are at debug level.
pub fn request_span(path: &str, headers: &http::HeaderMap) -> tracing::Span {
    let method = path.trim_start_matches('/');
    let (service, rpc) = method.split_once('/').unwrap_or((method, ""));
    let span = if service.starts_with("grpc.") {
        tracing::debug_span!(
            "grpc",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %rpc,
        )
    } else {
        tracing::info_span!(
            "grpc",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %rpc,
            tenant = tracing::field::Empty,
        )
    };
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Fails only when no OpenTelemetry layer is installed (no export): nothing to parent.
    let _ = span.set_parent(parent);
    span
}

/// Writes the current span's trace context (`traceparent`, `tracestate`) into the metadata of
/// an outgoing call, so the called service's `grpc` span continues this trace (email-intake's
/// and chat-gateway's `CreateInteraction` make the contact's trace the intake's).
pub fn inject_trace_context(metadata: &mut tonic::metadata::MetadataMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut MetadataInjector(metadata));
    });
}

/// Writes propagation fields into gRPC metadata.
struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagator keys and W3C values are ASCII: a failure here is a bug upstream, and the
        // call goes out untraced rather than not at all.
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Reads propagation fields (`traceparent`, `tracestate`) from HTTP/2 headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
