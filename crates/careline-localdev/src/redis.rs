//! [`RedisServer`]: a local `redis-server`, throw-away for a test or kept for `careline up`.
//!
//! A test server gets its own free loopback port and temp dir and keeps nothing on
//! disk unless started [`RedisServer::start_durable`]; a kept one
//! ([`RedisServer::start_at`]) writes an append-only file.
//! [`RedisServer::kill`] and [`RedisServer::restart`] let fault tests take it away
//! and bring it back on the same port, as a crashed Redis would come back.

use std::time::Duration;

use crate::process::{
    Binary, DataDir, READY_POLL_INTERVAL, ServerProcess, free_port, on_free_ports,
};
use crate::{LocalDevError, ServerTls};

/// How long a fresh server has to answer PING.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long one PING attempt may take before the next one.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a cluster node may be unreachable before it counts as failed
/// (and a replica takes over): short, so fault tests see failovers quickly.
pub const CLUSTER_NODE_TIMEOUT_MS: u64 = 1_500;

/// Sorted sets of more members than this are kept as skip lists, not as one
/// packed list (Redis' default keeps up to 128 packed). Routing moves an
/// agent to the end of its index on every offer: in a packed list that reads
/// every entry before it, in a skip list a few. The Helm chart's Redis runs
/// with the same setting; `loadtest/README.md` has the measurement.
const ZSET_MAX_LISTPACK_ENTRIES: u32 = 16;

const REDIS: Binary = Binary {
    name: "redis-server",
    env_var: "CARELINE_REDIS_SERVER",
    apt_package: "redis-server",
};

/// When a durable server fsyncs its append-only file (`appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFsync {
    /// After every write: nothing acknowledged is lost.
    Always,
    /// Once a second: a crash of the machine may lose the last second.
    EverySec,
}

impl AppendFsync {
    /// The value `redis-server --appendfsync` and `CONFIG SET` take.
    pub fn as_str(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::EverySec => "everysec",
        }
    }
}

/// A running `redis-server` on `127.0.0.1`, killed on drop.
pub struct RedisServer {
    port: u16,
    dir: DataDir,
    /// Append-only file on (and how it syncs) across restarts.
    aof: Option<AppendFsync>,
    /// The cluster bus port, for a node of a [`RedisCluster`](crate::RedisCluster).
    cluster_port: Option<u16>,
    /// The TLS port and its files, besides the plaintext port.
    tls: Option<(u16, ServerTls)>,
    process: ServerProcess,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Result<Self, LocalDevError> {
        on_free_ports(|| async {
            Self::launch(
                DataDir::temp("careline-redis-")?,
                free_port()?,
                None,
                None,
                None,
            )
            .await
        })
        .await
    }

    /// Starts a throw-away server that also listens for TLS (see [`RedisServer::tls_url`])
    /// with `tls`'s files; waits until it answers PING on its plaintext port.
    pub async fn start_tls(tls: ServerTls) -> Result<Self, LocalDevError> {
        on_free_ports(|| async {
            let dir = DataDir::temp("careline-redis-tls-")?;
            Self::launch(
                dir,
                free_port()?,
                None,
                None,
                Some((free_port()?, tls.clone())),
            )
            .await
        })
        .await
    }

    /// Starts a throw-away server with the append-only file on, so that
    /// [`RedisServer::restart`] after a crash reloads what was written, as a
    /// production Redis with AOF would.
    pub async fn start_durable(fsync: AppendFsync) -> Result<Self, LocalDevError> {
        on_free_ports(|| async {
            Self::launch(
                DataDir::temp("careline-redis-")?,
                free_port()?,
                Some(fsync),
                None,
                None,
            )
            .await
        })
        .await
    }

    /// Starts a durable, cluster-enabled node (not yet part of a cluster)
    /// with its bus on a port of its own.
    pub(crate) async fn start_cluster_node(fsync: AppendFsync) -> Result<Self, LocalDevError> {
        on_free_ports(|| async {
            let dir = DataDir::temp("careline-redis-node-")?;
            Self::launch(dir, free_port()?, Some(fsync), Some(free_port()?), None).await
        })
        .await
    }

    /// Starts a server on `port` that keeps its data in `dir` across runs
    /// (append-only file), for `careline up`; waits until it answers PING.
    pub async fn start_at(dir: std::path::PathBuf, port: u16) -> Result<Self, LocalDevError> {
        Self::launch(
            DataDir::kept(dir)?,
            port,
            Some(AppendFsync::EverySec),
            None,
            None,
        )
        .await
    }

    async fn launch(
        dir: DataDir,
        port: u16,
        aof: Option<AppendFsync>,
        cluster_port: Option<u16>,
        tls: Option<(u16, ServerTls)>,
    ) -> Result<Self, LocalDevError> {
        let process = spawn(&dir, port, aof, cluster_port, tls.as_ref())?;
        let mut server = Self {
            port,
            dir,
            aof,
            cluster_port,
            tls,
            process,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `rediss://127.0.0.1:TLS_PORT/`, for a server started with [`RedisServer::start_tls`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|(port, _)| format!("rediss://127.0.0.1:{port}/"))
    }

    /// Kills the server with SIGKILL (a crash, not a shutdown). Data is lost.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Kills the server if running and starts a new one on the same port and dir:
    /// empty for a throw-away server, its append-only file reloaded for a kept
    /// or durable one.
    pub async fn restart(&mut self) -> Result<(), LocalDevError> {
        self.process.kill();
        self.process = spawn(
            &self.dir,
            self.port,
            self.aof,
            self.cluster_port,
            self.tls.as_ref(),
        )?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), LocalDevError> {
        let client = redis::Client::open(self.url())?;
        let until = tokio::time::Instant::now() + READY_DEADLINE;
        loop {
            self.process.check_running()?;
            if ping(&client).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(self.process.not_ready(self.port, READY_DEADLINE));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }
}

fn spawn(
    dir: &DataDir,
    port: u16,
    aof: Option<AppendFsync>,
    cluster_port: Option<u16>,
    tls: Option<&(u16, ServerTls)>,
) -> Result<ServerProcess, LocalDevError> {
    let fsync = aof.unwrap_or(AppendFsync::EverySec);
    let mut args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--dir",
        &dir.path().display().to_string(),
        "--save",
        "",
        "--appendonly",
        if aof.is_some() { "yes" } else { "no" },
        "--appendfsync",
        fsync.as_str(),
        "--zset-max-listpack-entries",
        &ZSET_MAX_LISTPACK_ENTRIES.to_string(),
        "--daemonize",
        "no",
    ]
    .map(String::from)
    .to_vec();
    if let Some(bus) = cluster_port {
        args.extend(
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                &bus.to_string(),
                "--cluster-node-timeout",
                &CLUSTER_NODE_TIMEOUT_MS.to_string(),
                // A new replica syncs at once (the default waits 5 s for
                // others to share the transfer).
                "--repl-diskless-sync-delay",
                "0",
            ]
            .map(String::from),
        );
    }
    if let Some((tls_port, files)) = tls {
        args.extend([
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            files.cert.display().to_string(),
            "--tls-key-file".to_owned(),
            files.key.display().to_string(),
            "--tls-ca-cert-file".to_owned(),
            files.ca.display().to_string(),
            "--tls-auth-clients".to_owned(),
            if files.verify_clients {
                "yes"
            } else {
                "optional"
            }
            .to_owned(),
        ]);
    }
    ServerProcess::spawn(&REDIS, &args, dir, "redis.log")
}

async fn ping(client: &redis::Client) -> bool {
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await,
        Ok(Some(pong)) if pong == "PONG"
    )
}
