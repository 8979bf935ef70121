//! [`ProcessPlatform`]: the platform as it is deployed — every router and
//! presence replica a real `careline-router` / `careline-presence` binary
//! run as a child process — over a durable Redis (append-only file on) and
//! NATS JetStream, so a test can `kill -9` any of them and start it again on
//! the same port, the way a crashed pod comes back.
//!
//! The binaries are taken from next to the test binary
//! (`target/<profile>/`); `scripts/test.sh` builds them before the tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use careline_domain::TenantConfig;
use careline_kit::config::{ENV_LOG_FILTER, ENV_METRICS_ADDR, ENV_NATS_URL, ENV_REDIS_URL};
use careline_testkit::{AppendFsync, NatsServer, RedisServer, Sandbox, TestRedis};

use crate::platform::{SHUTDOWN_GRACE_SECS, Service, apply_tenant, wait_serving};

/// What the replicas log: warnings and errors (info lines would cost the
/// 2-core CI machine more than the load does).
pub const REPLICA_LOG_FILTER: &str = "warn";

impl Service {
    /// The binary that runs the service.
    pub fn binary_name(self) -> &'static str {
        match self {
            Service::Router => "careline-router",
            Service::Presence => "careline-presence",
        }
    }

    /// The variable that sets the service's gRPC listen address.
    fn listen_env(self) -> &'static str {
        match self {
            Service::Router => "CARELINE_ROUTER_ADDR",
            Service::Presence => "CARELINE_PRESENCE_ADDR",
        }
    }
}

/// Where the service binaries are: the directory of the test binary's
/// profile (`target/debug/deps/careline_e2e-…` -> `target/debug/`).
pub fn binary_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let deps = exe.parent().context("the test binary has no directory")?;
    let profile_dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent()
            .context("target/<profile>/deps has no parent")?
    } else {
        deps
    };
    Ok(profile_dir.to_path_buf())
}

/// `dir/<service binary>`, or an error with the command that builds it.
pub fn locate_binary(dir: &Path, service: Service) -> anyhow::Result<PathBuf> {
    let path = dir.join(service.binary_name());
    if path.is_file() {
        return Ok(path);
    }
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => String::new(),
        Some("release") => " --release".into(),
        Some(other) => format!(" --profile {other}"),
    };
    anyhow::bail!(
        "{} is missing: build the service binaries first with \
         `cargo build{profile} -p careline-router -p careline-presence` \
         (scripts/test.sh does this before running the tests)",
        path.display()
    )
}

/// One replica run as a child process on a fixed loopback port.
pub struct ServiceProcess {
    /// Which service it runs.
    pub service: Service,
    /// `router-0`, `presence-1`, ...
    pub name: String,
    /// Its gRPC address, the same across restarts.
    pub addr: SocketAddr,
    /// How many times it was started again after a kill.
    pub restarts: u32,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `service` on a free loopback port, logging to `log_dir`.
    fn start(
        service: Service,
        index: usize,
        binary: PathBuf,
        common_env: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<ServiceProcess> {
        let name = format!(
            "{}-{index}",
            service.binary_name().trim_start_matches("careline-")
        );
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut env = common_env.to_vec();
        env.push((service.listen_env().into(), addr.to_string()));
        let mut process = ServiceProcess {
            service,
            log: log_dir.join(format!("{name}.log")),
            name,
            addr,
            restarts: 0,
            binary,
            env,
            child: None,
        };
        process.spawn()?;
        Ok(process)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&self.binary)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`: no drain, no agent taken offline, no outbox entry
    /// acknowledged. A no-op when already killed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the killed replica again on the same port and waits until it
    /// serves `tenant`.
    pub async fn restart(&mut self, tenant: &str) -> anyhow::Result<()> {
        self.kill();
        self.spawn()?;
        self.restarts += 1;
        self.wait_serving(tenant).await
    }

    /// Waits until the replica serves `tenant`; on failure the error holds
    /// the end of its log.
    pub async fn wait_serving(&mut self, tenant: &str) -> anyhow::Result<()> {
        let serving = wait_serving(self.service, &self.name, self.addr, tenant).await;
        let exited = match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            _ => None,
        };
        serving.with_context(|| {
            format!(
                "{} ({}; exited: {exited:?}), last lines of {}:\n{}",
                self.name,
                self.addr,
                self.log.display(),
                self.log_tail()
            )
        })
    }

    /// The last lines the replica logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

/// Lines of a replica's log shown in an error.
const LOG_TAIL_LINES: usize = 20;

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis (append-only file on), NATS, a tenant and replicas as child
/// processes; everything is killed when it is dropped.
pub struct ProcessPlatform {
    /// Field order matters: replicas drop before the servers they use.
    pub routers: Vec<ServiceProcess>,
    pub presence: Vec<ServiceProcess>,
    pub tenant: TenantConfig,
    pub jetstream: async_nats::jetstream::Context,
    pub sandbox: Sandbox,
    /// Where the replicas log: removed with the platform, kept (and
    /// printed) when it is dropped by a failing test.
    log_dir: Option<tempfile::TempDir>,
}

impl Drop for ProcessPlatform {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.log_dir.take()
        {
            eprintln!("replica logs kept in {}", dir.keep().display());
        }
    }
}

impl ProcessPlatform {
    /// Starts Redis with its append-only file synced as `fsync`, NATS,
    /// applies `tenant`, and starts the replicas as child processes.
    pub async fn start(
        tenant: TenantConfig,
        routers: usize,
        presence: usize,
        fsync: AppendFsync,
    ) -> anyhow::Result<ProcessPlatform> {
        Self::start_with_env(tenant, routers, presence, fsync, &[]).await
    }

    /// [`ProcessPlatform::start`], with `extra_env` set in every replica's
    /// environment on top of (and overriding) the platform's own.
    pub async fn start_with_env(
        tenant: TenantConfig,
        routers: usize,
        presence: usize,
        fsync: AppendFsync,
        extra_env: &[(&str, String)],
    ) -> anyhow::Result<ProcessPlatform> {
        let dir = binary_dir()?;
        let router_binary = locate_binary(&dir, Service::Router)?;
        let presence_binary = locate_binary(&dir, Service::Presence)?;
        let (redis, nats) =
            tokio::try_join!(RedisServer::start_durable(fsync), NatsServer::start())?;
        let sandbox = Sandbox {
            redis: TestRedis::Single(redis),
            nats,
        };
        let jetstream = async_nats::jetstream::new(sandbox.nats().await?);
        apply_tenant(&jetstream, &tenant, None).await?;
        let log_dir = tempfile::Builder::new()
            .prefix("careline-e2e-replicas-")
            .tempdir()?;
        let env: Vec<(String, String)> = [
            (ENV_REDIS_URL, sandbox.redis_url()),
            (ENV_NATS_URL, sandbox.nats_url()),
            (ENV_METRICS_ADDR, "off".into()),
            (ENV_LOG_FILTER, REPLICA_LOG_FILTER.into()),
            (
                careline_kit::config::ENV_SHUTDOWN_GRACE_SECS,
                SHUTDOWN_GRACE_SECS.to_string(),
            ),
        ]
        .into_iter()
        .chain(extra_env.iter().cloned())
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let log_dir_path = log_dir.path().to_path_buf();
        let log_dir_path = log_dir_path.as_path();
        let mut platform = ProcessPlatform {
            routers: Vec::with_capacity(routers),
            presence: Vec::with_capacity(presence),
            tenant,
            jetstream,
            sandbox,
            log_dir: Some(log_dir),
        };
        for index in 0..routers {
            let process = ServiceProcess::start(
                Service::Router,
                index,
                router_binary.clone(),
                &env,
                log_dir_path,
            )?;
            platform.routers.push(process);
        }
        for index in 0..presence {
            let process = ServiceProcess::start(
                Service::Presence,
                index,
                presence_binary.clone(),
                &env,
                log_dir_path,
            )?;
            platform.presence.push(process);
        }
        let tenant_id = platform.tenant.id.clone();
        for replica in platform.routers.iter_mut().chain(&mut platform.presence) {
            replica.wait_serving(&tenant_id).await?;
        }
        Ok(platform)
    }

    /// Where the replicas log.
    pub fn log_dir(&self) -> &Path {
        self.log_dir
            .as_ref()
            .map(|dir| dir.path())
            .unwrap_or(Path::new(""))
    }

    /// Addresses of every router replica.
    pub fn router_addrs(&self) -> Vec<SocketAddr> {
        self.routers.iter().map(|r| r.addr).collect()
    }

    /// Addresses of every presence replica.
    pub fn presence_addrs(&self) -> Vec<SocketAddr> {
        self.presence.iter().map(|r| r.addr).collect()
    }

    /// Router replicas first, then presence: the `index`th replica.
    pub fn replica_mut(&mut self, index: usize) -> &mut ServiceProcess {
        let routers = self.routers.len();
        if index < routers {
            &mut self.routers[index]
        } else {
            &mut self.presence[index - routers]
        }
    }

    /// How many replicas run, routers and presence together.
    pub fn replica_count(&self) -> usize {
        self.routers.len() + self.presence.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_error_names_the_build_command() {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().join("release");
        std::fs::create_dir(&release).unwrap();
        let error = locate_binary(&release, Service::Router)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`cargo build --release -p careline-router -p careline-presence`"),
            "{error}"
        );
        assert!(error.contains("careline-router is missing"), "{error}");
    }

    #[test]
    fn binaries_are_looked_for_next_to_the_test_binary() {
        let dir = binary_dir().unwrap();
        assert!(
            dir.join("deps").is_dir(),
            "{} is not a target profile directory",
            dir.display()
        );
    }
}
