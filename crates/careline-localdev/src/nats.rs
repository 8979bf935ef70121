//! [`NatsServer`]: a local `nats-server` with JetStream, throw-away for a test or kept for `careline up`.
//!
//! A test server gets its own free loopback port and JetStream store dir (no
//! monitoring port). [`NatsServer::restart`] keeps both, so streams and KV
//! buckets survive a restart the way they do in production.
//! [`NatsServer::start_with_sync`] fsyncs every JetStream write, and
//! [`NatsServer::pause`] stalls the process, for benchmarks of what
//! durability and a stalled NATS cost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::process::{
    Binary, DataDir, READY_POLL_INTERVAL, ServerProcess, free_port, on_free_ports,
};
use crate::{LocalDevError, ServerTls};

/// How long a fresh server has to accept a client and answer a JetStream request.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long one connect-and-ask attempt may take before the next one.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);

const NATS: Binary = Binary {
    name: "nats-server",
    env_var: "CARELINE_NATS_SERVER",
    apt_package: "nats-server",
};

/// Servers this process has launched, numbering their names.
static LAUNCHED: AtomicUsize = AtomicUsize::new(0);

/// Configuration file lines written for [`JetStreamSync::Always`].
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
    /// The server's name, unique to this launch: the readiness check makes
    /// sure it reached this server, not another test's that took the port
    /// first (this one then exits, unable to bind).
    name: String,
    /// Arguments beyond the defaults (the name, the sync configuration file).
    extra: Vec<String>,
    /// What clients need to get in: TLS files, a user and password.
    access: NatsAccess,
    process: ServerProcess,
}

/// How clients must connect to a [`NatsServer`]: plaintext and anonymous by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsAccess {
    /// TLS required, with these files.
    pub tls: Option<ServerTls>,
    /// A user and password required.
    pub user_password: Option<(String, String)>,
}

impl NatsAccess {
    /// The server configuration file lines (`tls { }`, `authorization { }`).
    fn config(&self) -> String {
        let mut config = String::new();
        if let Some(tls) = &self.tls {
            config.push_str(&format!(
                "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: {}\n}}\n",
                tls.cert.display().to_string(),
                tls.key.display().to_string(),
                tls.ca.display().to_string(),
                tls.verify_clients
            ));
        }
        if let Some((user, password)) = &self.user_password {
            config.push_str(&format!(
                "authorization {{\n  user: {user:?}\n  password: {password:?}\n}}\n"
            ));
        }
        config
    }

    /// Client options that get in (the readiness check's).
    fn client_options(&self) -> async_nats::ConnectOptions {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(tls) = &self.tls {
            options = options
                .require_tls(true)
                .add_root_certificates(tls.ca.clone());
            if tls.verify_clients {
                options = options.add_client_certificate(tls.cert.clone(), tls.key.clone());
            }
        }
        if let Some((user, password)) = &self.user_password {
            options = options.user_and_password(user.clone(), password.clone());
        }
        options
    }
}

impl NatsServer {
    /// Starts a server on a free port and waits until JetStream answers.
    pub async fn start() -> Result<Self, LocalDevError> {
        Self::start_with_sync(JetStreamSync::Default).await
    }

    /// Starts a throw-away server on a free port that syncs JetStream as
    /// `sync` says; waits until JetStream answers.
    pub async fn start_with_sync(sync: JetStreamSync) -> Result<Self, LocalDevError> {
        on_free_ports(|| async {
            Self::launch(
                DataDir::temp("careline-nats-")?,
                free_port()?,
                sync,
                NatsAccess::default(),
            )
            .await
        })
        .await
    }

    /// Starts a throw-away server on a free port that clients reach only as `access` says
    /// (TLS, a user and password); waits until JetStream answers such a client.
    pub async fn start_with_access(access: NatsAccess) -> Result<Self, LocalDevError> {
        on_free_ports(|| async {
            Self::launch(
                DataDir::temp("careline-nats-")?,
                free_port()?,
                JetStreamSync::Default,
                access.clone(),
            )
            .await
        })
        .await
    }

    /// Starts a server on `port` that keeps streams and KV buckets in `dir`
    /// across runs, for `careline up`; waits until JetStream answers.
    pub async fn start_at(dir: std::path::PathBuf, port: u16) -> Result<Self, LocalDevError> {
        Self::launch(
            DataDir::kept(dir)?,
            port,
            JetStreamSync::Default,
            NatsAccess::default(),
        )
        .await
    }

    async fn launch(
        dir: DataDir,
        port: u16,
        sync: JetStreamSync,
        access: NatsAccess,
    ) -> Result<Self, LocalDevError> {
        let mut config = access.config();
        if sync == JetStreamSync::Always {
            config.push_str(SYNC_ALWAYS_CONFIG);
        }
        let name = format!(
            "careline-{}-{}",
            std::process::id(),
            LAUNCHED.fetch_add(1, Ordering::Relaxed)
        );
        let mut extra = vec!["--server_name".to_string(), name.clone()];
        if !config.is_empty() {
            let file = dir.path().join("nats.conf");
            std::fs::write(&file, config)
                .map_err(LocalDevError::io(format!("writing {}", file.display())))?;
            extra.extend(["-c".to_string(), file.display().to_string()]);
        }
        let process = spawn(&dir, port, &extra)?;
        let mut server = Self {
            port,
            dir,
            name,
            extra,
            access,
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

    /// `nats://127.0.0.1:PORT`, or `tls://127.0.0.1:PORT` when TLS is required.
    pub fn url(&self) -> String {
        let scheme = if self.access.tls.is_some() {
            "tls"
        } else {
            "nats"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
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
            if jetstream_answers(&url, self.access.client_options(), &self.name).await {
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

/// Whether a client connects to the server named `name` and JetStream
/// answers an account-info request.
///
/// This asks `$JS.API.INFO` directly rather than via `Context::query_account`:
/// async-nats 0.51 cannot decode nats-server 2.9's reply (it lacks `reserved_memory`).
pub(crate) async fn jetstream_answers(
    url: &str,
    options: async_nats::ConnectOptions,
    name: &str,
) -> bool {
    let attempt = async {
        let client = options
            .connection_timeout(ATTEMPT_TIMEOUT)
            .connect(url)
            .await
            .ok()?;
        if client.server_info().server_name != name {
            return Some(false);
        }
        let reply = client.request("$JS.API.INFO", "".into()).await.ok()?;
        let info: serde_json::Value = serde_json::from_slice(&reply.payload).ok()?;
        Some(info.get("error").is_none() && info.get("streams").is_some())
    };
    matches!(
        tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await,
        Ok(Some(true))
    )
}
