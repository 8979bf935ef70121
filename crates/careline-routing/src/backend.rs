//! What a routing service (router, presence) connects to at start-up: the
//! routing store in Redis, NATS with its event stream, the live tenant
//! directory, and the background [`worker`](crate::worker) every replica runs.

use std::sync::Arc;

use careline_bus::{Publisher, TenantDirectory};
use careline_kit::config::CommonConfig;
use tokio::sync::watch;
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
    healthy: watch::Receiver<bool>,
    worker: JoinHandle<()>,
    probe: JoinHandle<()>,
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
    /// Connects to what `config` names, sets up the event stream, loads the
    /// tenants and starts the worker; `replica` names this replica's outbox
    /// relay (e.g. `router`). New interactions are refused while
    /// `outbox_max_events` events of their tenant wait for NATS; a change is
    /// answered once `redis_wait_replicas` Redis replicas have it. The NATS
    /// URL may list several servers of a cluster; the stream and bucket are
    /// kept on `nats_replicas` of them.
    pub async fn start(
        config: &CommonConfig,
        replica: &str,
        shutdown: &CancellationToken,
    ) -> Result<Backend> {
        let tls = config
            .tls
            .load()
            .map_err(|e| RoutingError::Unreachable(e.to_string()))?;
        // URLs are not echoed: they may carry passwords.
        let store = RoutingStore::connect_with_tls(&config.redis_url, &tls)
            .await
            .map_err(|e| {
                RoutingError::Unreachable(format!(
                    "cannot connect to Redis (--redis-url / CARELINE_REDIS_URL): {e}"
                ))
            })?
            .with_outbox_max_events(config.outbox_max_events)
            .with_replica_acks(config.redis_wait_replicas);
        let servers = careline_bus::server_list(&config.nats_url);
        let nats_options = careline_kit::nats_client::options(config)
            .await
            .map_err(|e| RoutingError::Unreachable(e.to_string()))?;
        let nats = nats_options.connect(servers).await.map_err(|e| {
            RoutingError::Unreachable(format!(
                "cannot connect to NATS (--nats-url / CARELINE_NATS_URL): {e}"
            ))
        })?;
        let jetstream = async_nats::jetstream::new(nats.clone());
        let tenants =
            careline_bus::setup::start_tenants(&jetstream, config.nats_replicas, shutdown)
                .await
                .map(Arc::new)
                .map_err(bus)?;
        let relay = OutboxRelay::new(
            store.connection(),
            Publisher::new(jetstream).with_atomic_batches(config.nats_atomic_batches),
            format!("{replica}-{}", uuid::Uuid::new_v4()),
        );
        let worker = tokio::spawn(crate::worker::run(
            store.clone(),
            relay,
            tenants.clone(),
            shutdown.clone(),
        ));
        let (healthy, probe) = careline_kit::readiness::spawn_probe(
            store.connection(),
            nats.clone(),
            shutdown.clone(),
        );
        Ok(Backend {
            store,
            nats,
            tenants,
            healthy,
            worker,
            probe,
        })
    }

    /// Whether Redis answers and NATS is connected, updated every
    /// [`careline_kit::readiness::HEALTH_PROBE_EVERY`]; services report it as gRPC health.
    pub fn healthy(&self) -> watch::Receiver<bool> {
        self.healthy.clone()
    }

    /// Waits for the background tasks to finish after shutdown.
    pub async fn stopped(self) {
        for (task, name) in [
            (self.worker, "routing worker"),
            (self.probe, "health probe"),
        ] {
            if let Err(error) = task.await {
                tracing::error!(%error, "{name} panicked");
            }
        }
    }
}
