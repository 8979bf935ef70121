//! [`TestRedis`]: the Redis a test runs against, a single server or a local
//! Redis Cluster, so one test body can prove a behaviour on both.

use anyhow::Context;

use crate::{RedisCluster, RedisServer};

/// Primaries of a test cluster: the fewest Redis Cluster accepts.
pub const TEST_CLUSTER_PRIMARIES: usize = 3;

/// A throw-away Redis for one test: one server, or a cluster of
/// [`TEST_CLUSTER_PRIMARIES`] primaries (no replicas) on loopback.
pub enum TestRedis {
    /// One `redis-server`.
    Single(RedisServer),
    /// A Redis Cluster.
    Cluster(RedisCluster),
}

impl TestRedis {
    /// Starts a single server.
    pub async fn single() -> anyhow::Result<TestRedis> {
        Ok(TestRedis::Single(
            RedisServer::start()
                .await
                .context("starting redis-server")?,
        ))
    }

    /// Starts a cluster of [`TEST_CLUSTER_PRIMARIES`] primaries.
    pub async fn cluster() -> anyhow::Result<TestRedis> {
        Ok(TestRedis::Cluster(
            RedisCluster::start(TEST_CLUSTER_PRIMARIES, 0)
                .await
                .context("starting a Redis Cluster")?,
        ))
    }

    /// What `--redis-url` takes to reach it.
    pub fn url(&self) -> String {
        match self {
            TestRedis::Single(server) => server.url(),
            TestRedis::Cluster(cluster) => cluster.url(),
        }
    }

    /// Kills every server (SIGKILL): Redis is gone.
    pub fn kill(&mut self) {
        match self {
            TestRedis::Single(server) => server.kill(),
            TestRedis::Cluster(cluster) => {
                for index in 0..cluster.len() {
                    cluster.node(index).kill();
                }
            }
        }
    }

    /// Restarts every server on its port (a cluster's nodes reload their
    /// append-only files and rejoin) and waits until Redis serves again.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        match self {
            TestRedis::Single(server) => server.restart().await?,
            TestRedis::Cluster(cluster) => {
                for index in 0..cluster.len() {
                    cluster.node(index).restart().await?;
                }
                cluster.wait_ready().await?;
            }
        }
        Ok(())
    }
}
