//! What both server wrappers share: finding the binary, picking a free port,
//! choosing where data lives, and a child process whose output is captured to a
//! log file and which is stopped on drop.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::LocalDevError;

/// How often a starting server is asked whether it is ready.
pub(crate) const READY_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long a kept server gets to shut down after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// How often a stopping server is checked for having exited.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How many of a server's last log lines an error message quotes.
const LOG_TAIL_LINES: usize = 20;

/// How to find and install one server binary.
pub(crate) struct Binary {
    pub name: &'static str,
    pub env_var: &'static str,
    pub apt_package: &'static str,
}

impl Binary {
    /// The binary to run: `$env_var` if set, else `name` found on `PATH`.
    pub fn locate(&self) -> Result<PathBuf, LocalDevError> {
        if let Some(path) = std::env::var_os(self.env_var).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(LocalDevError::BinaryEnvNotAFile {
                    env_var: self.env_var,
                    path,
                    name: self.name,
                });
            }
            return Ok(path);
        }
        std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(self.name))
                    .find(|candidate| candidate.is_file())
            })
            .ok_or(LocalDevError::BinaryNotFound {
                name: self.name,
                apt_package: self.apt_package,
            })
    }
}

/// Where a server keeps its files: a temp dir removed on drop (tests), or a
/// directory that outlives the process (`careline up`).
pub(crate) enum DataDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl DataDir {
    pub fn temp(prefix: &str) -> Result<Self, LocalDevError> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(LocalDevError::io("creating a temp dir"))?;
        Ok(DataDir::Temp(dir))
    }

    pub fn kept(path: PathBuf) -> Result<Self, LocalDevError> {
        std::fs::create_dir_all(&path)
            .map_err(LocalDevError::io(format!("creating {}", path.display())))?;
        Ok(DataDir::Kept(path))
    }

    pub fn path(&self) -> &Path {
        match self {
            DataDir::Temp(dir) => dir.path(),
            DataDir::Kept(path) => path,
        }
    }

    pub fn is_kept(&self) -> bool {
        matches!(self, DataDir::Kept(_))
    }
}

/// A loopback port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> Result<u16, LocalDevError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(LocalDevError::io("binding 127.0.0.1:0"))?;
    let addr = listener
        .local_addr()
        .map_err(LocalDevError::io("reading the bound port"))?;
    Ok(addr.port())
}

/// Times a throw-away server is started, each time on new ports from
/// [`free_port`], while another process takes its port between the pick and
/// the server's bind (tests run side by side).
const PORT_ATTEMPTS: usize = 3;

/// Runs `launch` (which picks its ports with [`free_port`]) again while the
/// server exits because its port was taken meanwhile.
pub(crate) async fn on_free_ports<T, F, Fut>(mut launch: F) -> Result<T, LocalDevError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, LocalDevError>>,
{
    let mut attempt = 1;
    loop {
        match launch().await {
            Err(error) if error.port_taken() && attempt < PORT_ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

/// A running child process whose output goes to `log`; killed (SIGKILL) on drop.
pub(crate) struct ServerProcess {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    graceful: bool,
}

impl ServerProcess {
    /// Starts `binary`. A `kept` server (one whose data outlives it) runs in
    /// its own process group, so a terminal's ctrl-c reaches only its parent,
    /// and is stopped with SIGTERM (then SIGKILL after [`STOP_DEADLINE`]) so it
    /// can flush its data; throw-away test servers are simply killed.
    pub fn spawn(
        binary: &Binary,
        args: &[String],
        dir: &DataDir,
        log_name: &str,
    ) -> Result<Self, LocalDevError> {
        let path = binary.locate()?;
        let log = dir.path().join(log_name);
        let out = std::fs::File::create(&log).map_err(LocalDevError::io(format!(
            "creating log file {}",
            log.display()
        )))?;
        let err = out.try_clone().map_err(LocalDevError::io(format!(
            "opening log file {}",
            log.display()
        )))?;
        let mut command = Command::new(&path);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if dir.is_kept() {
            command.process_group(0);
        }
        let child = command
            .spawn()
            .map_err(LocalDevError::io(format!("starting {}", path.display())))?;
        Ok(Self {
            name: binary.name,
            child: Some(child),
            log,
            graceful: dir.is_kept(),
        })
    }

    /// Fails with the server's own output if it has already exited.
    pub fn check_running(&mut self) -> Result<(), LocalDevError> {
        let status = match self.child.as_mut() {
            None => "killed".to_string(),
            Some(child) => match child.try_wait() {
                Ok(None) => return Ok(()),
                Ok(Some(status)) => status.to_string(),
                Err(error) => format!("state unknown: {error}"),
            },
        };
        Err(LocalDevError::Exited {
            name: self.name,
            status,
            log_tail: self.log_tail(),
        })
    }

    /// The error for a server that runs on `port` but did not answer within `deadline`.
    pub fn not_ready(&self, port: u16, deadline: Duration) -> LocalDevError {
        LocalDevError::NotReady {
            name: self.name,
            port,
            deadline,
            log_tail: self.log_tail(),
        }
    }

    /// The last lines the server wrote, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// SIGTERM, then waits up to [`STOP_DEADLINE`] for the process to exit.
    fn terminate(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let Ok(pid) = i32::try_from(child.id()) else {
            return;
        };
        if nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .is_err()
        {
            return;
        }
        let until = Instant::now() + STOP_DEADLINE;
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return;
            }
            // Drop cannot await; this runs once, at shutdown.
            std::thread::sleep(STOP_POLL_INTERVAL);
        }
    }

    /// Sends `signal` to the running process (SIGSTOP/SIGCONT pause and
    /// resume it, as a hung or overloaded server would stall).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), LocalDevError> {
        let child = self.child.as_ref().ok_or_else(|| LocalDevError::Io {
            what: format!("sending {signal} to {}", self.name),
            source: std::io::Error::other("the process was killed"),
        })?;
        let pid = i32::try_from(child.id()).map_err(|_| LocalDevError::Io {
            what: format!("sending {signal} to {}", self.name),
            source: std::io::Error::other("process id out of range"),
        })?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(|errno| {
            LocalDevError::Io {
                what: format!("sending {signal} to {} (pid {pid})", self.name),
                source: errno.into(),
            }
        })
    }

    /// SIGKILL and reap; a no-op when already killed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.graceful {
            self.terminate();
        }
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_error_says_how_to_install_it() {
        let binary = Binary {
            name: "careline-no-such-server",
            env_var: "CARELINE_LOCALDEV_UNSET_VARIABLE",
            apt_package: "careline-no-such-package",
        };
        let err = binary.locate().unwrap_err().to_string();
        assert_eq!(
            err,
            "careline-no-such-server not found on PATH: install it with \
             `sudo apt-get install -y careline-no-such-package` (or run scripts/test.sh, which installs it)"
        );
    }

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().unwrap();
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
