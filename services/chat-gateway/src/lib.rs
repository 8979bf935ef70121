//! Careline chat-gateway: web chat between members (a WebSocket from the
//! embeddable widget) and agents (a gRPC stream), across replicas.
//!
//! - [`config`]: [`ChatGatewayConfig`], flags and environment.
//! - [`protocol`]: the member WebSocket protocol v1 (`docs/chat-protocol.md`):
//!   frames, the decoder, error and close codes.
//! - [`limits`]: every size, rate and time limit, named.
//! - [`chats`]: [`Chats`], the core: start, resume, say, close, sweep.
//! - [`transcript`]: [`ChatStore`], the chat's own Redis keys (transcript stream,
//!   client-id dedupe, resume grace).
//! - [`feed`]: the live side across replicas, one core NATS subject per chat.
//! - [`router`]: the router's gRPC API as the gateway calls it.
//! - `member`: one member socket; `web`: the HTTP routes and static files;
//!   [`contact`]: the contact form (`POST /v1/contact`), handed to email-intake;
//!   [`callback`]: a closed widget's call-back request (`POST /v1/callback`), to campaigns.
//! - `agent`: one agent `ChatSession` stream; `grpc`: the tonic adapter;
//!   `error`: [`ChatError`] and its one status table.
//!
//! [`serve`] runs it: the same function backs the binary, `careline up` and the tests.

#![forbid(unsafe_code)]

mod agent;
pub mod callback;
pub mod chats;
pub mod config;
pub mod contact;
mod error;
pub mod feed;
mod grpc;
pub mod limits;
mod member;
pub mod protocol;
pub mod router;
pub mod transcript;
mod web;

use std::sync::Arc;

use anyhow::Context;
use careline_bus::{TenantDirectory, TenantStore};
use careline_kit::{GrpcServer, RedisConnection, Shutdown, TenantAuth};
use careline_proto::v1::chat_gateway_server::ChatGatewayServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;

pub use chats::Chats;
pub use config::ChatGatewayConfig;
pub use error::ChatError;
pub use transcript::ChatStore;

/// Binds `config.http_addr` and runs the gateway (gRPC on `listener`) until `shutdown`.
pub async fn serve(
    config: ChatGatewayConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let http = TcpListener::bind(config.http_addr).await.with_context(|| {
        format!(
            "cannot listen for HTTP on {} (in use? set --http-addr)",
            config.http_addr
        )
    })?;
    serve_with_http(config, listener, http, shutdown).await
}

/// [`serve`] with the HTTP listener already bound (tests and `careline up` bind port 0).
pub async fn serve_with_http(
    config: ChatGatewayConfig,
    listener: TcpListener,
    http: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let tls = config.common.tls.load()?;
    // URLs are not echoed: they may carry passwords.
    let redis = RedisConnection::connect(&config.common.redis_url, &tls)
        .await
        .context("cannot connect to Redis (--redis-url / CARELINE_REDIS_URL)")?;
    let nats = careline_kit::nats_client::connect(&config.common).await?;
    let js = async_nats::jetstream::new(nats.clone());
    let tenants = Arc::new(load_tenants(&js, config.common.nats_replicas, shutdown.token()).await?);
    let chats = Arc::new(Chats {
        store: ChatStore::new(redis.clone()),
        feed: feed::Feed::new(nats.clone()),
        router: router::RouterGateway::new(
            &config.router_url,
            config.router_api_keys.clone(),
            &tls,
        )?,
        tenants: tenants.clone(),
        resume_grace: config.resume_grace(),
        callbacks: !config.campaigns_url.is_empty(),
    });
    let (healthy, probe) =
        careline_kit::readiness::spawn_probe(redis, nats, shutdown.token().clone());
    let sweeper = tokio::spawn(sweep(chats.clone(), shutdown.token().clone()));
    let sockets = TaskTracker::new();
    let sessions = TaskTracker::new();
    let contact = contact::ContactDesk::new(
        chats.clone(),
        &config.email_intake_url,
        &config.campaigns_url,
        config.router_api_keys.clone(),
        &tls,
    )?;
    let web = web::routes(web::WebState {
        chats: chats.clone(),
        shutdown: shutdown.token().clone(),
        sockets: sockets.clone(),
    })
    .merge(contact::routes(contact));
    tracing::info!(addr = %http.local_addr()?, tls = tls.serves_tls(), "chat-gateway HTTP (member WebSocket, widget) serving");
    let http_server = tokio::spawn(careline_kit::tls::serve_http(
        http,
        web,
        &tls,
        shutdown.wait(),
    ));
    let service = InterceptedService::new(
        ChatGatewayServer::new(grpc::ChatGatewayService {
            chats,
            shutdown: shutdown.token().clone(),
            sessions: sessions.clone(),
            audit: careline_bus::audit::AuditLog::new(js.clone(), "chat-gateway"),
        })
        .max_decoding_message_size(limits::MAX_GRPC_REQUEST_BYTES),
        TenantAuth::from_arc(tenants),
    );
    tracing::info!(addr = %listener.local_addr()?, "chat-gateway gRPC serving");
    GrpcServer::new()
        .add_service(service)
        .configure(&config.common)?
        .readiness(healthy)
        .serve(listener, shutdown.wait())
        .await?;
    // Member sockets and agent streams see the shutdown and close (1001 /
    // UNAVAILABLE: resume on another replica); their leases start the grace.
    for tracker in [&sockets, &sessions] {
        tracker.close();
        if tokio::time::timeout(config.common.shutdown_grace(), tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the shutdown grace; leaving them");
        }
    }
    match http_server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "HTTP server failed"),
        Err(error) => tracing::error!(%error, "HTTP server panicked"),
    }
    careline_kit::service::join_tasks([(sweeper, "grace sweeper"), (probe, "health probe")]).await;
    Ok(())
}

/// Settles chats whose member did not come back, every [`limits::SWEEP_INTERVAL`].
async fn sweep(chats: Arc<Chats>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(limits::SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let taken = chats.sweep().await;
                if taken > 0 {
                    tracing::debug!(taken, "chats past their resume grace settled");
                }
            }
        }
    }
}

/// The tenant directory, retried as every service retries its NATS set-up
/// ([`careline_bus::setup::retrying`]).
async fn load_tenants(
    js: &async_nats::jetstream::Context,
    replicas: Option<usize>,
    shutdown: &CancellationToken,
) -> anyhow::Result<TenantDirectory> {
    careline_bus::setup::retrying(shutdown, || async {
        let store = TenantStore::open(js, replicas).await?;
        TenantDirectory::start(&store, shutdown).await
    })
    .await
    .context("loading the tenants from NATS")
}
