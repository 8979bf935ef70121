//! [`NatsServer`]: a throw-away `nats-server` with JetStream for one test.
//!
//! Each server gets its own free loopback port and JetStream store dir (no
//! monitoring port). [`NatsServer::restart`] keeps both, so streams and KV
//! buckets survive a restart the way they do in production.

use std::time::Duration;

use crate::process::{Binary, DataDir, ServerProcess, free_port};
use anyhow::Context;

/// How long a fresh server has to accept a client and answer a JetStream request.
const READY_DEADLINE: Duration = Duration::from_secs(10);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);

const NATS: Binary = Binary {
    name: "nats-server",
    env_var: "CARELINE_NATS_SERVER",
    apt_package: "nats-server",
};

/// A running `nats-server -js` on `127.0.0.1`, killed on drop.
pub struct NatsServer {
    port: u16,
    dir: DataDir,
    process: ServerProcess,
}

impl NatsServer {
    /// Starts a server on a free port and waits until JetStream answers.
    pub async fn start() -> anyhow::Result<Self> {
        Self::launch(DataDir::temp("careline-nats-")?, free_port()?).await
    }

    /// Starts a server on `port` that keeps streams and KV buckets in `dir`
    /// across runs, for `careline up`; waits until JetStream answers.
    pub async fn start_at(dir: std::path::PathBuf, port: u16) -> anyhow::Result<Self> {
        Self::launch(DataDir::kept(dir)?, port).await
    }

    async fn launch(dir: DataDir, port: u16) -> anyhow::Result<Self> {
        let process = spawn(&dir, port)?;
        let mut server = Self { port, dir, process };
        server.wait_ready().await?;
        Ok(server)
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
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill();
        self.process = spawn(&self.dir, self.port)?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = self.url();
        let until = tokio::time::Instant::now() + READY_DEADLINE;
        loop {
            self.process.check_running()?;
            if jetstream_answers(&url).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                anyhow::bail!(
                    "nats-server on port {} did not answer JetStream within {READY_DEADLINE:?}; its output:\n{}",
                    self.port,
                    self.process.log_tail()
                );
            }
            tokio::time::sleep(crate::POLL_INTERVAL).await;
        }
    }
}

fn spawn(dir: &DataDir, port: u16) -> anyhow::Result<ServerProcess> {
    let binary = NATS.locate()?;
    let store = dir.path().join("jetstream");
    let args = [
        "-js",
        "-a",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-sd",
        &store.display().to_string(),
    ]
    .map(String::from);
    ServerProcess::spawn(&binary, &args, dir.path().join("nats.log"), dir.is_kept())
        .context("starting nats-server")
}

/// Whether a client connects and JetStream answers an account-info request.
///
/// This asks `$JS.API.INFO` directly rather than via `Context::query_account`:
/// async-nats 0.51 cannot decode nats-server 2.9's reply (it lacks `reserved_memory`).
async fn jetstream_answers(url: &str) -> bool {
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
