//! The Careline presence service: agent sessions, states and heartbeats, and
//! the agent's offer stream (`careline.v1.Presence`).
//!
//! - [`config`]: [`PresenceConfig`], flags and environment.
//! - `grpc`: the tonic adapter (authenticate, validate, call, map errors).
//! - `session`: one agent session from login to disconnect.
//! - `sessions`: the sessions hosted on this replica and the routing events
//!   delivered to them.
//! - `agents`: agent credentials and the supervisor view (GetAgent, ListAgents).
//! - `error`: [`PresenceError`] and its mapping to gRPC status codes.
//!
//! [`serve`] runs it: the same function backs the `careline-presence`
//! binary, `careline up` and the tests.

#![forbid(unsafe_code)]

mod agents;
pub mod config;
mod error;
mod grpc;
mod session;
mod sessions;

use careline_kit::{GrpcServer, Shutdown, TenantAuth};
use careline_proto::v1::presence_server::PresenceServer;
use careline_routing::Backend;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;

pub use config::PresenceConfig;
pub use error::PresenceError;

/// Largest request the presence service accepts.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Runs the presence service on `listener` until `shutdown`; sessions then
/// end with UNAVAILABLE and their agents go offline before this returns.
pub async fn serve(
    config: PresenceConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let backend = Backend::start(&config.common, "presence", shutdown.token()).await?;
    let (store, nats) = (backend.store.clone(), backend.nats.clone());
    let registry = sessions::SessionRegistry::default();
    let [interactions, agents] = sessions::EVENT_SUBJECTS;
    let events = futures::stream::select(
        nats.subscribe(interactions).await?,
        nats.subscribe(agents).await?,
    );
    let dispatcher = tokio::spawn(sessions::dispatch_events(
        registry.clone(),
        store.clone(),
        events,
        shutdown.token().clone(),
    ));
    let sessions = TaskTracker::new();
    let service = grpc::PresenceService {
        ctx: session::SessionContext {
            store,
            tenants: backend.tenants.clone(),
            registry,
            shutdown: shutdown.token().clone(),
        },
        sessions: sessions.clone(),
        session_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
            config.max_sessions as usize,
        )),
        max_sessions: config.max_sessions,
    };
    let presence = InterceptedService::new(
        PresenceServer::new(service).max_decoding_message_size(MAX_REQUEST_BYTES),
        TenantAuth::new(backend.tenants.clone()),
    );
    tracing::info!(addr = %listener.local_addr()?, "presence serving");
    GrpcServer::new()
        .add_service(presence)
        .configure(&config.common)?
        // NOT_SERVING while Redis or NATS is unreachable.
        .readiness(backend.healthy())
        .serve(listener, shutdown.wait())
        .await?;
    sessions.close();
    sessions.wait().await;
    dispatcher.await?;
    backend.stopped().await;
    Ok(())
}
