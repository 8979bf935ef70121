//! [`Sandbox`]: the real Redis and NATS a service needs, started together and
//! torn down together when the sandbox is dropped. Redis is one server or a
//! Redis Cluster ([`TestRedis`]); NATS is one server ([`Sandbox::start`]) or a
//! JetStream cluster ([`Sandbox::start_with_nats_cluster`]).

use anyhow::Context;

use crate::{NatsCluster, NatsServer, TestRedis};

/// The NATS side of a sandbox: one server or a cluster, reached through its client URLs.
pub trait SandboxNats {
    /// The client URL of every server.
    fn urls(&self) -> Vec<String>;
}

impl SandboxNats for NatsServer {
    fn urls(&self) -> Vec<String> {
        vec![self.url()]
    }
}

impl SandboxNats for NatsCluster {
    fn urls(&self) -> Vec<String> {
        NatsCluster::urls(self)
    }
}

/// A Redis and a `nats-server` (JetStream), or a NATS cluster, for one test.
pub struct Sandbox<N = NatsServer> {
    /// The Redis (a server or a cluster), for fault tests (`kill`, `restart`).
    pub redis: TestRedis,
    /// The NATS server or cluster, for fault tests (`kill`, `restart`).
    pub nats: N,
}

impl Sandbox {
    /// Starts both servers concurrently and waits until both answer.
    pub async fn start() -> anyhow::Result<Self> {
        let (redis, nats) = tokio::try_join!(TestRedis::single(), async {
            Ok(NatsServer::start().await?)
        })?;
        Ok(Self { redis, nats })
    }

    /// Like [`Sandbox::start`], with a local Redis Cluster instead of one server.
    pub async fn start_on_cluster() -> anyhow::Result<Self> {
        let (redis, nats) = tokio::try_join!(TestRedis::cluster(), async {
            Ok(NatsServer::start().await?)
        })?;
        Ok(Self { redis, nats })
    }
}

impl Sandbox<NatsCluster> {
    /// Starts `redis` and a NATS cluster of `nodes` servers concurrently; waits
    /// until both answer and a stream replicated on every node can be created.
    pub async fn start_with_nats_cluster(
        redis: impl Future<Output = anyhow::Result<TestRedis>>,
        nodes: usize,
    ) -> anyhow::Result<Self> {
        let (redis, nats) =
            tokio::try_join!(redis, async { Ok(NatsCluster::start(nodes).await?) })?;
        Ok(Self { redis, nats })
    }
}

impl<N: SandboxNats> Sandbox<N> {
    /// `redis://127.0.0.1:PORT/`, or `redis+cluster://...` for a cluster.
    pub fn redis_url(&self) -> String {
        self.redis.url()
    }

    /// `nats://127.0.0.1:PORT`, or every server of the cluster, comma-separated.
    pub fn nats_url(&self) -> String {
        self.nats.urls().join(",")
    }

    /// A reconnecting Redis connection to the sandbox, of the kind services use.
    pub async fn redis(&self) -> anyhow::Result<careline_kit::RedisConnection> {
        careline_kit::RedisConnection::connect(&self.redis_url(), &careline_kit::Tls::default())
            .await
            .context("connecting to the sandbox redis-server")
    }

    /// A NATS client connected to the sandbox (to any live server of a cluster).
    pub async fn nats(&self) -> anyhow::Result<async_nats::Client> {
        async_nats::connect(self.nats.urls())
            .await
            .context("connecting to the sandbox nats-server")
    }
}
