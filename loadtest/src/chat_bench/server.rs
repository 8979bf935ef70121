//! The measured servers as child processes (so their memory is theirs alone): start on a free
//! loopback port, wait until they accept connections, read their resident memory, stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How long a server may take to accept connections after it was started.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Pause between two connection attempts while a server starts.
const START_POLL: Duration = Duration::from_millis(100);

/// A server running as a child process; killed when dropped.
pub struct ServerProcess {
    pub addr: SocketAddr,
    child: Child,
}

impl ServerProcess {
    /// Starts `program` with `args` (environment `env` added) and waits until `addr` accepts.
    pub async fn start(
        name: &'static str,
        program: PathBuf,
        args: &[String],
        env: &[(String, String)],
        addr: SocketAddr,
    ) -> anyhow::Result<ServerProcess> {
        let child = Command::new(&program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (build it: cargo build --release -p careline-loadtest -p careline-chat-gateway)",
                    program.display()
                )
            })?;
        let mut server = ServerProcess { addr, child };
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("{name} exited during start-up: {status}");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{name} did not accept connections on {addr} within {START_DEADLINE:?}");
            }
            tokio::time::sleep(START_POLL).await;
        }
    }

    /// Resident memory of the process now, in KiB (`VmRSS` of /proc/<pid>/status).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("read /proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS line in /proc/<pid>/status")
    }

    /// Stops the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Waits until `addr` accepts TCP connections.
pub async fn wait_accepting(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + START_DEADLINE;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if tokio::time::Instant::now() > deadline {
            bail!("nothing accepts connections on {addr} after {START_DEADLINE:?}");
        }
        tokio::time::sleep(START_POLL).await;
    }
    Ok(())
}

/// A loopback address nobody listens on right now.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// A program built next to this one (same target directory and profile).
pub fn sibling(program: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("where is this program?")?;
    Ok(me.with_file_name(program))
}
