//! What a routing service (router, presence) connects to at start-up: the
//! routing store in Redis, NATS with its event stream, the live tenant
//! directory, and the background [`worker`](crate::worker) every replica runs.

use std::sync::Arc;

use careline_bus::{Publisher, TenantDirectory, TenantStore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Result, RoutingError};
use crate::relay::OutboxRelay;
use crate::store::RoutingStore;

/// Connections and shared state of one service replica.
pub struct Backend {
    pub store: RoutingStore,
    pub nats: async_nats::Client,
    pub tenants: Arc<TenantDirectory>,
    worker: JoinHandle<()>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

fn bus(error: impl std::fmt::Display) -> RoutingError {
    RoutingError::Bus(error.to_string())
}

impl Backend {
    /// Connects, sets up the event stream, loads the tenants and starts the
    /// worker; `replica` names this replica's outbox relay (e.g. `router`).
    pub async fn start(
        redis_url: &str,
        nats_url: &str,
        replica: &str,
        shutdown: &CancellationToken,
    ) -> Result<Backend> {
        let store = RoutingStore::connect(redis_url).await?;
        let nats = async_nats::connect(nats_url)
            .await
            .map_err(|e| bus(format!("cannot connect to NATS at {nats_url}: {e}")))?;
        let jetstream = async_nats::jetstream::new(nats.clone());
        careline_bus::ensure_streams(&jetstream)
            .await
            .map_err(bus)?;
        let tenant_store = TenantStore::open(&jetstream).await.map_err(bus)?;
        let tenants = Arc::new(
            TenantDirectory::start(&tenant_store, shutdown)
                .await
                .map_err(bus)?,
        );
        // The relay blocks on XREADGROUP, so it gets a connection of its own.
        let relay = OutboxRelay::new(
            RoutingStore::connect(redis_url).await?.connection(),
            Publisher::new(jetstream),
            format!("{replica}-{}", uuid::Uuid::new_v4()),
        );
        let worker = tokio::spawn(crate::worker::run(
            store.clone(),
            relay,
            tenants.clone(),
            shutdown.clone(),
        ));
        Ok(Backend {
            store,
            nats,
            tenants,
            worker,
        })
    }

    /// Waits for the background worker to finish after shutdown.
    pub async fn stopped(self) {
        if let Err(error) = self.worker.await {
            tracing::error!(%error, "routing worker panicked");
        }
    }
}
