//! The one error type of careline-localdev.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting or watching a local server.
#[derive(Debug, thiserror::Error)]
pub enum LocalDevError {
    /// The server binary is not on `PATH` (and no env var names it).
    #[error(
        "{name} not found on PATH: install it with `sudo apt-get install -y {apt_package}` \
         (or run scripts/test.sh, which installs it)"
    )]
    BinaryNotFound {
        /// The binary's file name, e.g. `redis-server`.
        name: &'static str,
        /// The Debian/Ubuntu package that installs it.
        apt_package: &'static str,
    },
    /// The env var meant to name the binary points at something that is not a file.
    #[error("{env_var} is set to {}, which is not a file: point it at a {name} binary or unset it", path.display())]
    BinaryEnvNotAFile {
        /// The env var, e.g. `CARELINE_REDIS_SERVER`.
        env_var: &'static str,
        /// What it is set to.
        path: PathBuf,
        /// The binary it should name.
        name: &'static str,
    },
    /// A file, directory, port or process could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing, e.g. `creating /tmp/x/redis.log`.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server process exited (or was killed) before it was ready.
    #[error("{name} exited ({status}); its output:\n{log_tail}")]
    Exited {
        /// The binary's file name.
        name: &'static str,
        /// How it ended.
        status: String,
        /// The last lines it wrote.
        log_tail: String,
    },
    /// The server runs but did not answer in time.
    #[error("{name} on port {port} did not answer within {deadline:?}; its output:\n{log_tail}")]
    NotReady {
        /// The binary's file name.
        name: &'static str,
        /// The port it should listen on.
        port: u16,
        /// How long it was given.
        deadline: Duration,
        /// The last lines it wrote.
        log_tail: String,
    },
    /// A local Redis Cluster could not be formed or did not become ready.
    #[error("redis cluster: {0}")]
    ClusterNotReady(String),
    /// A Redis URL could not be turned into a client.
    #[error("redis client: {0}")]
    Redis(#[from] redis::RedisError),
}

impl LocalDevError {
    /// An [`LocalDevError::Io`] naming what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

impl LocalDevError {
    /// Whether the server exited because another process held its port.
    pub fn port_taken(&self) -> bool {
        matches!(self, Self::Exited { log_tail, .. }
            if log_tail.to_ascii_lowercase().contains("address already in use"))
    }
}
