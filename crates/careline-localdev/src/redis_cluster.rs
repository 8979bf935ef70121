//! [`RedisCluster`]: a throw-away Redis Cluster on loopback for tests: a few
//! cluster-enabled `redis-server`s (durable, append-only file) joined with
//! `redis-cli --cluster create`, each node killable and restartable, so
//! tests can run the routing scenarios on a sharded Redis and fail a primary.

use std::time::Duration;

use crate::LocalDevError;
use crate::process::{Binary, READY_POLL_INTERVAL};
use crate::redis::{AppendFsync, RedisServer};

/// How long the nodes get to agree on the slot map (`cluster_state:ok`).
const CLUSTER_READY_DEADLINE: Duration = Duration::from_secs(30);

const REDIS_CLI: Binary = Binary {
    name: "redis-cli",
    env_var: "CARELINE_REDIS_CLI",
    apt_package: "redis-tools",
};

/// A running Redis Cluster on `127.0.0.1`; every node is killed on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `primaries` primaries (at least 3, as Redis requires), each
    /// with `replicas_per_primary` replicas, fsyncing every write, and waits
    /// until every node serves the full slot map and every replica has
    /// synced (a replica that never synced cannot take over).
    pub async fn start(
        primaries: usize,
        replicas_per_primary: usize,
    ) -> Result<Self, LocalDevError> {
        let count = primaries * (1 + replicas_per_primary);
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            nodes.push(RedisServer::start_cluster_node(AppendFsync::Always).await?);
        }
        let cli = REDIS_CLI.locate()?;
        let mut create = tokio::process::Command::new(&cli);
        create.args(["--cluster", "create"]);
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        create.args([
            "--cluster-replicas",
            &replicas_per_primary.to_string(),
            "--cluster-yes",
        ]);
        let output = create.output().await.map_err(LocalDevError::io(format!(
            "running {} --cluster create",
            cli.display()
        )))?;
        if !output.status.success() {
            return Err(LocalDevError::ClusterNotReady(format!(
                "redis-cli --cluster create failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        let cluster = Self { nodes };
        cluster.wait_ready().await?;
        if replicas_per_primary > 0 {
            for index in 0..cluster.nodes.len() {
                if cluster.is_primary(index).await? {
                    cluster.wait_replicated(index).await?;
                }
            }
        }
        Ok(cluster)
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`: every node as a seed.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// How many nodes the cluster has (primaries and replicas).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it has no nodes (never, once started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node at `index`, to kill or restart it.
    pub fn node(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// The index of the node that currently serves `key`'s slot as primary,
    /// as the nodes that answer see it (a killed node is skipped: after a
    /// failover its replica's index is returned).
    pub async fn primary_of(&self, key: &str) -> Result<usize, LocalDevError> {
        for (index, node) in self.nodes.iter().enumerate() {
            let Ok(mut conn) = redis::Client::open(node.url())?
                .get_multiplexed_async_connection()
                .await
            else {
                continue;
            };
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
            let is_primary =
                matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master");
            if !is_primary {
                continue;
            }
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async(&mut conn)
                .await?;
            let owner: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await?;
            for range in owner {
                let bounds = (range.first(), range.get(1), range.get(2));
                if let (
                    Some(redis::Value::Int(low)),
                    Some(redis::Value::Int(high)),
                    Some(redis::Value::Array(primary)),
                ) = bounds
                    && (*low..=*high).contains(&i64::from(slot))
                    && matches!(primary.get(1), Some(redis::Value::Int(p)) if *p == i64::from(node.port()))
                {
                    return Ok(index);
                }
            }
        }
        Err(LocalDevError::ClusterNotReady(format!(
            "no primary serves the slot of {key:?}"
        )))
    }

    async fn is_primary(&self, index: usize) -> Result<bool, LocalDevError> {
        let mut conn = redis::Client::open(self.nodes[index].url())?
            .get_multiplexed_async_connection()
            .await?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
        Ok(matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master"))
    }

    /// Waits until every replica of the primary at `primary` has everything
    /// it wrote (their replication offsets match its own).
    pub async fn wait_replicated(&self, primary: usize) -> Result<(), LocalDevError> {
        let until = tokio::time::Instant::now() + CLUSTER_READY_DEADLINE;
        let mut conn = redis::Client::open(self.nodes[primary].url())?
            .get_multiplexed_async_connection()
            .await?;
        loop {
            // ROLE of a primary: ["master", offset, [[ip, port, offset], ...]].
            let role: (String, i64, Vec<(String, String, String)>) =
                redis::cmd("ROLE").query_async(&mut conn).await?;
            let (_, offset, replicas) = &role;
            if !replicas.is_empty()
                && replicas
                    .iter()
                    .all(|(_, _, acked)| acked.parse::<i64>().ok() == Some(*offset))
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(LocalDevError::ClusterNotReady(format!(
                    "the replicas of node {primary} did not catch up within \
                     {CLUSTER_READY_DEADLINE:?}: {role:?}"
                )));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }

    /// Waits until every running node reports `cluster_state:ok`.
    pub async fn wait_ready(&self) -> Result<(), LocalDevError> {
        let until = tokio::time::Instant::now() + CLUSTER_READY_DEADLINE;
        loop {
            let mut last = String::new();
            let mut ready = true;
            for node in &self.nodes {
                match cluster_state(&node.url()).await {
                    Ok(state) if state == "ok" => {}
                    Ok(state) => {
                        last = format!("node {} reports cluster_state:{state}", node.port());
                        ready = false;
                    }
                    Err(error) => {
                        last = format!("node {}: {error}", node.port());
                        ready = false;
                    }
                }
            }
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(LocalDevError::ClusterNotReady(format!(
                    "not ready within {CLUSTER_READY_DEADLINE:?}: {last}"
                )));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }
}

async fn cluster_state(url: &str) -> Result<String, LocalDevError> {
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut conn)
        .await?;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix("cluster_state:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned())
}
