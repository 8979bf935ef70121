//! [`Platform`]: Redis and NATS, a tenant in the configuration bucket, and
//! any number of router and presence replicas serving on loopback.
//!
//! Each replica runs on a tokio runtime of its own. Aborting a replica's
//! `serve` task alone would leave the tasks it spawned (its outbox relay and
//! timer worker, its gRPC connections, its agent sessions) running on the
//! shared runtime, which is not what a crash looks like; shutting the
//! replica's runtime down drops all of them at once, without any of the
//! graceful drain a shutdown signal would run: the in-process `kill -9`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use careline_bus::TenantStore;
use careline_domain::TenantConfig;
use careline_kit::{CommonConfig, Shutdown};
use careline_presence::PresenceConfig;
use careline_proto::v1;
use careline_router::RouterConfig;
use careline_testkit::{NatsCluster, NatsServer, Sandbox, SandboxNats, TestRedis};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::client;
use crate::tenant;

/// How long a replica may take to load the tenant and answer.
pub const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Grace a replica gets to drain when stopped (not killed).
pub const SHUTDOWN_GRACE_SECS: u64 = 2;

/// Which service a replica runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Router,
    Presence,
}

/// One running service replica.
pub struct Replica {
    pub service: Service,
    /// `router-0`, `presence-1`, ...
    pub name: String,
    pub addr: SocketAddr,
    shutdown: Shutdown,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("running", &self.is_running())
            .finish()
    }
}

impl Replica {
    /// Starts `service` on a fresh loopback port and a runtime of its own.
    pub fn start(service: Service, index: usize, common: CommonConfig) -> anyhow::Result<Replica> {
        let name = match service {
            Service::Router => format!("router-{index}"),
            Service::Presence => format!("presence-{index}"),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name.clone())
            .enable_all()
            .build()
            .with_context(|| format!("runtime of {name}"))?;
        let shutdown = Shutdown::new();
        let serve_shutdown = shutdown.clone();
        let handle = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            match service {
                Service::Router => {
                    careline_router::serve(
                        RouterConfig::with_common(common),
                        listener,
                        serve_shutdown,
                    )
                    .await
                }
                Service::Presence => {
                    careline_presence::serve(
                        PresenceConfig::with_common(common),
                        listener,
                        serve_shutdown,
                    )
                    .await
                }
            }
        });
        Ok(Replica {
            service,
            name,
            addr,
            shutdown,
            handle: Some(handle),
            runtime: Some(runtime),
        })
    }

    /// Whether the replica is neither killed nor stopped.
    pub fn is_running(&self) -> bool {
        self.runtime.is_some() && self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Kills the replica like `kill -9`: its `serve` task is aborted and
    /// every task it spawned is dropped with its runtime, mid-flight; no
    /// drain, no agent taken offline, no outbox entry acknowledged.
    pub fn kill(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// How `serve` ended, if it has (taking its result); `None` while it runs.
    pub async fn ended(&mut self) -> Option<anyhow::Result<()>> {
        if !self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            return None;
        }
        let handle = self.handle.take()?;
        Some(handle.await.context("serve task").and_then(|served| served))
    }

    /// Stops the replica gracefully (SIGTERM) and returns how `serve` ended.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        let result = match self.handle.take() {
            Some(handle) => handle.await.context("serve task")?,
            None => Ok(()),
        };
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        result
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.kill();
    }
}

/// Builds a [`Platform`]: which tenant, how many replicas of each service.
pub struct PlatformBuilder {
    tenant: TenantConfig,
    routers: usize,
    presence: usize,
    redis_cluster: bool,
}

impl PlatformBuilder {
    /// The tenant to apply (default: [`tenant::demo`]).
    pub fn tenant(mut self, tenant: TenantConfig) -> Self {
        self.tenant = tenant;
        self
    }

    /// How many router replicas (default 1).
    pub fn routers(mut self, count: usize) -> Self {
        self.routers = count;
        self
    }

    /// How many presence replicas (default 1).
    pub fn presence(mut self, count: usize) -> Self {
        self.presence = count;
        self
    }

    /// Runs on a local Redis Cluster (three primaries) instead of one server.
    pub fn redis_cluster(mut self, on: bool) -> Self {
        self.redis_cluster = on;
        self
    }

    /// Starts Redis and NATS, applies the tenant, starts the replicas and
    /// waits until each of them serves the tenant.
    pub async fn start(self) -> anyhow::Result<Platform> {
        let sandbox = if self.redis_cluster {
            Sandbox::start_on_cluster().await?
        } else {
            Sandbox::start().await?
        };
        self.start_on(sandbox, None).await
    }

    /// Like [`PlatformBuilder::start`] over a NATS cluster of `nodes` servers,
    /// every stream and the tenant bucket kept on all of them (`--nats-replicas`).
    pub async fn start_with_nats_cluster(
        self,
        nodes: usize,
    ) -> anyhow::Result<Platform<NatsCluster>> {
        let redis_cluster = self.redis_cluster;
        let redis = async move {
            if redis_cluster {
                TestRedis::cluster().await
            } else {
                TestRedis::single().await
            }
        };
        let sandbox = Sandbox::start_with_nats_cluster(redis, nodes).await?;
        self.start_on(sandbox, Some(nodes)).await
    }

    async fn start_on<N: SandboxNats>(
        self,
        sandbox: Sandbox<N>,
        nats_replicas: Option<usize>,
    ) -> anyhow::Result<Platform<N>> {
        let jetstream = async_nats::jetstream::new(sandbox.nats().await?);
        apply_tenant(&jetstream, &self.tenant, nats_replicas).await?;
        let common = CommonConfig {
            redis_url: sandbox.redis_url(),
            nats_url: sandbox.nats_url(),
            nats_replicas,
            shutdown_grace_secs: SHUTDOWN_GRACE_SECS,
            ..CommonConfig::default()
        };
        let mut routers = Vec::with_capacity(self.routers);
        for index in 0..self.routers {
            routers.push(Replica::start(Service::Router, index, common.clone())?);
        }
        let mut presence = Vec::with_capacity(self.presence);
        for index in 0..self.presence {
            presence.push(Replica::start(Service::Presence, index, common.clone())?);
        }
        let mut platform = Platform {
            sandbox,
            jetstream,
            tenant: self.tenant,
            routers,
            presence,
        };
        let tenant = platform.tenant.id.clone();
        for replica in platform.routers.iter_mut().chain(&mut platform.presence) {
            let waited = wait_serving(replica.service, &replica.name, replica.addr, &tenant).await;
            if let Err(not_serving) = waited {
                // Whether the replica gave up (and why) or is still starting.
                let state = match replica.ended().await {
                    Some(Ok(())) => format!("{} stopped without an error", replica.name),
                    Some(Err(error)) => format!("{} stopped: {error:#}", replica.name),
                    None => format!("{} is still running", replica.name),
                };
                return Err(not_serving.context(state));
            }
        }
        Ok(platform)
    }
}

/// Redis, NATS (one server or a cluster), a tenant and the replicas serving
/// it; everything stops when it is dropped.
pub struct Platform<N = NatsServer> {
    /// Field order matters: replicas drop before the servers they use.
    pub routers: Vec<Replica>,
    pub presence: Vec<Replica>,
    pub tenant: TenantConfig,
    pub jetstream: async_nats::jetstream::Context,
    pub sandbox: Sandbox<N>,
}

impl Platform {
    /// A builder with the demo tenant, one router and one presence replica.
    pub fn builder() -> PlatformBuilder {
        PlatformBuilder {
            tenant: tenant::demo(),
            routers: 1,
            presence: 1,
            redis_cluster: false,
        }
    }
}

impl<N> Platform<N> {
    /// Addresses of every router replica, killed ones included.
    pub fn router_addrs(&self) -> Vec<SocketAddr> {
        self.routers.iter().map(|r| r.addr).collect()
    }

    /// Addresses of every presence replica, killed ones included.
    pub fn presence_addrs(&self) -> Vec<SocketAddr> {
        self.presence.iter().map(|r| r.addr).collect()
    }
}

/// Writes `tenant` to the configuration bucket (kept on `nats_replicas`
/// servers), where every replica reads it.
pub async fn apply_tenant(
    jetstream: &async_nats::jetstream::Context,
    tenant: &TenantConfig,
    nats_replicas: Option<usize>,
) -> anyhow::Result<()> {
    TenantStore::open(jetstream, nats_replicas)
        .await?
        .put(tenant)
        .await
        .context("applying the tenant")?;
    Ok(())
}

/// Waits until the `service` replica at `addr` (called `name`) serves
/// `tenant`, for up to [`READY_DEADLINE`].
pub async fn wait_serving(
    service: Service,
    name: &str,
    addr: SocketAddr,
    tenant: &str,
) -> anyhow::Result<()> {
    let what = format!("{name} serves tenant {tenant}");
    match service {
        Service::Router => {
            let router = client::router(addr, tenant::API_KEY);
            careline_testkit::eventually(READY_DEADLINE, &what, || {
                let mut router = router.clone();
                async move {
                    router
                        .get_queue_stats(v1::GetQueueStatsRequest::default())
                        .await
                        .is_ok()
                }
            })
            .await
        }
        Service::Presence => {
            let presence = client::presence(addr, tenant::API_KEY);
            careline_testkit::eventually(READY_DEADLINE, &what, || {
                let mut presence = presence.clone();
                async move {
                    presence
                        .list_agents(v1::ListAgentsRequest::default())
                        .await
                        .is_ok()
                }
            })
            .await
        }
    }
}
