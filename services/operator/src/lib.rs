//! The Careline operator: a Kubernetes controller that turns `Tenant` and `ContactQueue`
//! resources into tenant configurations in the NATS KV bucket every service watches (the
//! same bucket and validation `careline config apply -f` uses).
//!
//! - [`config`]: [`OperatorConfig`], flags and environment.
//! - [`crd`]: the resource types and the generated CustomResourceDefinition YAML.
//! - [`desired`]: merging a Tenant and its queues into one configuration; placing the
//!   domain's problems in the resource and field a user edits.
//! - [`controller`]: the reconcilers, the finalizer, [`controller::run`].
//! - [`status`]: the `Ready` condition and `observedGeneration`.
//! - [`leader`]: leader election on a Lease: one replica runs the controllers at a time.
//! - [`metrics`]: the operator's Prometheus metrics.
//! - [`Error`]: why a reconcile failed.
//!
//! [`serve`] runs it: gRPC health on the listener, the controllers until shutdown.

#![forbid(unsafe_code)]

pub mod config;
pub mod controller;
pub mod crd;
pub mod desired;
mod error;
pub mod leader;
pub mod metrics;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use careline_bus::TenantStore;
use careline_kit::{GrpcServer, Shutdown};
use kube::api::{Api, ListParams};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::OperatorConfig;
pub use controller::Context;
pub use error::Error;

/// How long to wait for NATS at start-up before giving up with a clear error.
pub const NATS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often gRPC health re-checks the NATS connection.
pub const READINESS_CHECK: Duration = Duration::from_secs(1);

/// Runs the operator against the cluster of the ambient kubeconfig / service account.
pub async fn serve(
    config: OperatorConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("cannot reach the Kubernetes API: run in a cluster or set KUBECONFIG")?;
    serve_with_client(config, client, listener, shutdown).await
}

/// [`serve`] with an explicit Kubernetes client.
pub async fn serve_with_client(
    config: OperatorConfig,
    client: kube::Client,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    Api::<crd::Tenant>::all(client.clone())
        .list(&ListParams::default().limit(1))
        .await
        .context(
            "cannot list Tenants: install the CRDs (kubectl apply -f charts/careline/crds/) \
             and grant the RBAC in services/operator/README.md",
        )?;
    let nats_url = &config.common.nats_url;
    let nats = careline_kit::nats_client::options(&config.common)
        .await?
        .connection_timeout(NATS_CONNECT_TIMEOUT)
        .connect(careline_bus::server_list(nats_url))
        .await
        .with_context(|| format!("cannot reach NATS at {nats_url}: set CARELINE_NATS_URL"))?;
    let store = TenantStore::open(
        &async_nats::jetstream::new(nats.clone()),
        config.common.nats_replicas,
    )
    .await?;
    let namespace = config
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let identity = config
        .identity
        .clone()
        .unwrap_or_else(|| format!("careline-operator-{}", uuid::Uuid::new_v4()));
    tracing::info!(%namespace, %identity, "operator starting");
    let lock = leader::LeaseLock::new(client.clone(), &namespace, identity);
    let ctx = Arc::new(Context {
        client,
        store,
        secret_namespace: namespace,
    });

    let (ready_tx, ready_rx) = watch::channel(true);
    let readiness = tokio::spawn(follow_nats(nats, ready_tx, shutdown.clone()));
    let controllers = tokio::spawn(leader::run_while_leader(
        lock,
        shutdown.clone(),
        move |term| controller::run(ctx.clone(), term),
    ));
    GrpcServer::new()
        .configure(&config.common)?
        // NOT_SERVING while NATS is unreachable.
        .readiness(ready_rx)
        .serve(listener, shutdown.wait())
        .await?;
    controllers.await?;
    readiness.await?;
    Ok(())
}

/// Keeps `ready` equal to "NATS is connected" until shutdown.
async fn follow_nats(nats: async_nats::Client, ready: watch::Sender<bool>, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(READINESS_CHECK);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {
                let connected = nats.connection_state() == async_nats::connection::State::Connected;
                ready.send_if_modified(|was| std::mem::replace(was, connected) != connected);
            }
        }
    }
}
