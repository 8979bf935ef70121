//! [`Sandbox`]: the real Redis and NATS a service needs, started together and
//! torn down together when the sandbox is dropped.

use anyhow::Context;

use crate::{NatsServer, TestRedis};

/// A `redis-server` and a `nats-server` (JetStream) for one test.
pub struct Sandbox {
    /// The Redis (a server or a cluster), for fault tests (`kill`, `restart`).
    pub redis: TestRedis,
    /// The NATS server, for fault tests (`kill`, `restart`).
    pub nats: NatsServer,
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

    /// `redis://127.0.0.1:PORT/`, or `redis+cluster://...` for a cluster.
    pub fn redis_url(&self) -> String {
        self.redis.url()
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn nats_url(&self) -> String {
        self.nats.url()
    }

    /// A reconnecting Redis connection to the sandbox, of the kind services use.
    pub async fn redis(&self) -> anyhow::Result<careline_kit::RedisConnection> {
        careline_kit::RedisConnection::connect(&self.redis_url())
            .await
            .context("connecting to the sandbox redis-server")
    }

    /// A NATS client connected to the sandbox.
    pub async fn nats(&self) -> anyhow::Result<async_nats::Client> {
        async_nats::connect(self.nats_url())
            .await
            .context("connecting to the sandbox nats-server")
    }
}
