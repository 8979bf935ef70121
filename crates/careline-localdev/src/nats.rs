//! [`NatsServer`]: a local `nats-server` with JetStream, throw-away for a test or kept for `careline up`.
//!
//! A test server gets its own free loopback port and JetStream store dir (no
//! monitoring port). [`NatsServer::restart`] keeps both, so streams and KV
//! buckets survive a restart the way they do in production.
//! [`NatsServer::start_with_sync`] fsyncs every JetStream write, and
//! [`NatsServer::pause`] stalls the process, for benchmarks of what
//! durability and a stalled NATS cost.

use std::time::Duration;

use crate::LocalDevError;
use crate::process::{Binary, DataDir, READY_POLL_INTERVAL, ServerProcess, free_port};

/// How long a fresh server has to accept a client and answer a JetStream request.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long one connect-and-ask attempt may take before the next one.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);

const NATS: Binary = Binary {
    name: "nats-server",
    env_var: "CARELINE_NATS_SERVER",
    apt_package: "nats-server",
};

/// Configuration file written for [`JetStreamSync::Always`].
const SYNC_ALWAYS_CONFIG: &str = "jetstream {\n  sync_interval: always\n}\n";

/// When JetStream fsyncs its store to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JetStreamSync {
    /// The server's default (every 2 minutes): a crash of the machine may
    /// lose writes acknowledged since the last sync.
    Default,
    /// After every write (`jetstream { sync_interval: always }`).
    Always,
}

/// A running `nats-server -js` on `127.0.0.1`, killed on drop.
pub struct NatsServer {
    port: u16,
    dir: DataDir,
    /// Arguments beyond the defaults (the sync configuration file).
    extra: Vec<String>,
    process: ServerProcess,
}

impl NatsServer {
    /// Starts a server on a free port and waits until JetStream answers.
    pub async fn start() -> Result<Self, LocalDevError> {
        Self::start_with_sync(JetStreamSync::Default).await
    }

    /// Starts a throw-away server on a free port that syncs JetStream as
    /// `sync` says; waits until JetStream answers.
    pub async fn start_with_sync(sync: JetStreamSync) -> Result<Self, LocalDevError> {
        Self::launch(DataDir::temp("careline-nats-")?, free_port()?, sync).await
    }

    /// Starts a server on `port` that keeps streams and KV buckets in `dir`
    /// across runs, for `careline up`; waits until JetStream answers.
    pub async fn start_at(dir: std::path::PathBuf, port: u16) -> Result<Self, LocalDevError> {
        Self::launch(DataDir::kept(dir)?, port, JetStreamSync::Default).await
    }

    async fn launch(dir: DataDir, port: u16, sync: JetStreamSync) -> Result<Self, LocalDevError> {
        let extra = match sync {
            JetStreamSync::Default => Vec::new(),
            JetStreamSync::Always => {
                let config = dir.path().join("sync-always.conf");
                std::fs::write(&config, SYNC_ALWAYS_CONFIG)
                    .map_err(LocalDevError::io(format!("writing {}", config.display())))?;
                vec!["-c".to_string(), config.display().to_string()]
            }
        };
        let process = spawn(&dir, port, &extra)?;
        let mut server = Self {
            port,
            dir,
            extra,
            process,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// Stops the process (SIGSTOP) without killing it: clients stay
    /// connected and their requests go unanswered, as with a stalled server.
    pub fn pause(&self) -> Result<(), LocalDevError> {
        self.process.signal(nix::sys::signal::Signal::SIGSTOP)
    }

    /// Lets a [paused](NatsServer::pause) server run again (SIGCONT).
    pub fn resume(&self) -> Result<(), LocalDevError> {
        self.process.signal(nix::sys::signal::Signal::SIGCONT)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL (a crash, not a shutdown).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Kills the server if running and starts a new one on the same port and store dir.
    pub async fn restart(&mut self) -> Result<(), LocalDevError> {
        self.process.kill();
        self.process = spawn(&self.dir, self.port, &self.extra)?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), LocalDevError> {
        let url = self.url();
        let until = tokio::time::Instant::now() + READY_DEADLINE;
        loop {
            self.process.check_running()?;
            if jetstream_answers(&url).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(self.process.not_ready(self.port, READY_DEADLINE));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }
}

/// Starts `nats-server -js` on `port` with its store in `dir`, plus `extra` arguments
/// (a cluster node's name and routes, a configuration file).
pub(crate) fn spawn(
    dir: &DataDir,
    port: u16,
    extra: &[String],
) -> Result<ServerProcess, LocalDevError> {
    let store = dir.path().join("jetstream");
    let mut args = [
        "-js",
        "-a",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-sd",
        &store.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(extra);
    ServerProcess::spawn(&NATS, &args, dir, "nats.log")
}

/// Whether a client connects and JetStream answers an account-info request.
///
/// This asks `$JS.API.INFO` directly rather than via `Context::query_account`:
/// async-nats 0.51 cannot decode nats-server 2.9's reply (it lacks `reserved_memory`).
pub(crate) async fn jetstream_answers(url: &str) -> bool {
    let attempt = async {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(ATTEMPT_TIMEOUT)
            .connect(url)
            .await
            .ok()?;
        let reply = client.request("$JS.API.INFO", "".into()).await.ok()?;
        let info: serde_json::Value = serde_json::from_slice(&reply.payload).ok()?;
        Some(info.get("error").is_none() && info.get("streams").is_some())
    };
    matches!(
        tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await,
        Ok(Some(true))
    )
}
