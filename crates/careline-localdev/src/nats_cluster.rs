//! [`NatsCluster`]: several local `nats-server -js` processes routed into one
//! JetStream cluster, for tests of replicated streams and of a node dying.
//!
//! Each node gets its own free client and route port, server name and store
//! dir; every node lists every route, so start order does not matter.
//! [`NatsCluster::start`] returns only once a stream replicated on every node
//! can be created, which needs a meta leader that knows all the peers (a
//! leader alone is not enough: right after the election a peer may still be
//! unknown, and creating an R3 stream then fails with "insufficient resources").

use std::time::Duration;

use crate::LocalDevError;
use crate::nats::{ATTEMPT_TIMEOUT, jetstream_answers, spawn};
use crate::process::{DataDir, READY_POLL_INTERVAL, ServerProcess, free_port};

/// How long a fresh cluster has to elect a meta leader that knows every peer.
const CLUSTER_READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long a restarted node has to rejoin and answer JetStream requests.
const NODE_READY_DEADLINE: Duration = Duration::from_secs(20);
/// The cluster name every node announces.
pub const CLUSTER_NAME: &str = "careline-local";
/// The stream created (then deleted) to prove the cluster can place replicas on every node.
const PROBE_STREAM: &str = "CARELINE_CLUSTER_PROBE";
/// How long creating and deleting the probe stream may take (a raft group is formed).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One node of a [`NatsCluster`].
struct Node {
    name: String,
    port: u16,
    route_port: u16,
    dir: DataDir,
    process: ServerProcess,
}

/// Running `nats-server -js` nodes on `127.0.0.1` forming one JetStream
/// cluster; every node is killed on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts `size` nodes on free ports and waits until a stream with `size`
    /// replicas can be created (a meta leader that knows every peer).
    pub async fn start(size: usize) -> Result<Self, LocalDevError> {
        let mut planned = Vec::with_capacity(size);
        for index in 0..size {
            planned.push((
                format!("n{index}"),
                free_port()?,
                free_port()?,
                DataDir::temp(&format!("careline-nats-n{index}-"))?,
            ));
        }
        let routes = planned
            .iter()
            .map(|(_, _, route_port, _)| format!("nats://127.0.0.1:{route_port}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::with_capacity(size);
        for (name, port, route_port, dir) in planned {
            let process = spawn(&dir, port, &node_args(&name, route_port, &routes))?;
            nodes.push(Node {
                name,
                port,
                route_port,
                dir,
                process,
            });
        }
        let mut cluster = Self { nodes };
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    /// How many nodes the cluster has (killed ones included).
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// The client URL of every node, `nats://127.0.0.1:PORT`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node_url(node.port)).collect()
    }

    /// Every node's client URL, comma-separated: what `--nats-url` takes, so a
    /// client survives any one node.
    pub fn url(&self) -> String {
        self.urls().join(",")
    }

    /// The server name of node `index` (`n0`, `n1`, ...), as stream cluster info reports it.
    pub fn name(&self, index: usize) -> &str {
        &self.nodes[index].name
    }

    /// The client port of node `index`.
    pub fn port(&self, index: usize) -> u16 {
        self.nodes[index].port
    }

    /// Kills node `index` with SIGKILL (a crash, not a shutdown).
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].process.kill();
    }

    /// Kills node `index` if running and starts it again on the same ports and
    /// store dir; waits until it answers JetStream requests through the cluster's
    /// meta leader. Its streams then catch up in the background.
    pub async fn restart(&mut self, index: usize) -> Result<(), LocalDevError> {
        let routes = self.routes();
        let node = &mut self.nodes[index];
        node.process.kill();
        node.process = spawn(
            &node.dir,
            node.port,
            &node_args(&node.name, node.route_port, &routes),
        )?;
        wait_node(node, NODE_READY_DEADLINE).await
    }

    fn routes(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.route_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn wait_ready(&mut self) -> Result<(), LocalDevError> {
        let until = tokio::time::Instant::now() + CLUSTER_READY_DEADLINE;
        for node in &mut self.nodes {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            wait_node(node, left).await?;
        }
        let urls = self.urls();
        loop {
            for node in &mut self.nodes {
                node.process.check_running()?;
            }
            if replicated_stream_fits(&urls, self.nodes.len()).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                let first = &self.nodes[0];
                return Err(first.process.not_ready(first.port, CLUSTER_READY_DEADLINE));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }
}

fn node_url(port: u16) -> String {
    format!("nats://127.0.0.1:{port}")
}

/// The arguments that make a server a named node of the cluster.
fn node_args(name: &str, route_port: u16, routes: &str) -> Vec<String> {
    [
        "--server_name",
        name,
        "--cluster_name",
        CLUSTER_NAME,
        "--cluster",
        &format!("nats://127.0.0.1:{route_port}"),
        "--routes",
        routes,
    ]
    .map(String::from)
    .to_vec()
}

/// Waits until `node` runs and answers a JetStream request (which needs a meta leader).
async fn wait_node(node: &mut Node, deadline: Duration) -> Result<(), LocalDevError> {
    let url = node_url(node.port);
    let until = tokio::time::Instant::now() + deadline;
    loop {
        node.process.check_running()?;
        if jetstream_answers(&url, async_nats::ConnectOptions::new(), &node.name).await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= until {
            return Err(node.process.not_ready(node.port, deadline));
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
}

/// Whether a memory stream with `replicas` replicas can be created (it is deleted again).
async fn replicated_stream_fits(urls: &[String], replicas: usize) -> bool {
    let attempt = async {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(ATTEMPT_TIMEOUT)
            .connect(urls)
            .await
            .ok()?;
        let js = async_nats::jetstream::new(client);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: PROBE_STREAM.to_owned(),
            storage: async_nats::jetstream::stream::StorageType::Memory,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .ok()?;
        js.delete_stream(PROBE_STREAM).await.ok()
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
        Ok(Some(_))
    )
}
