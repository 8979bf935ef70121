//! What both server wrappers share: finding the binary, picking a free port,
//! spawning with output captured to a log file, and killing on drop.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// How to find and install one server binary.
pub(crate) struct Binary {
    pub name: &'static str,
    pub env_var: &'static str,
    pub apt_package: &'static str,
}

impl Binary {
    /// The binary to run: `$env_var` if set, else `name` found on `PATH`.
    pub fn locate(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = std::env::var_os(self.env_var).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            anyhow::ensure!(
                path.is_file(),
                "{} is set to {}, which is not a file: point it at a {} binary or unset it",
                self.env_var,
                path.display(),
                self.name
            );
            return Ok(path);
        }
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(self.name))
                .find(|candidate| candidate.is_file())
        });
        found.with_context(|| {
            format!(
                "{name} not found on PATH: install it with `sudo apt-get install -y {pkg}` \
                 (or run scripts/test.sh, which installs it)",
                name = self.name,
                pkg = self.apt_package
            )
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
    pub fn temp(prefix: &str) -> anyhow::Result<Self> {
        Ok(DataDir::Temp(
            tempfile::Builder::new().prefix(prefix).tempdir()?,
        ))
    }

    pub fn kept(path: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
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
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A running child process whose output goes to `log`; killed (SIGKILL) on drop.
pub(crate) struct ServerProcess {
    child: Option<Child>,
    log: PathBuf,
    graceful: bool,
}

/// How long a kept server gets to shut down after SIGTERM.
pub(crate) const STOP_DEADLINE: Duration = Duration::from_secs(10);

impl ServerProcess {
    /// Starts `binary`. A `kept` server (one whose data outlives it) runs in
    /// its own process group, so a terminal's ctrl-c reaches only its parent,
    /// and is stopped with SIGTERM (then SIGKILL after [`STOP_DEADLINE`]) so it
    /// can flush its data; throw-away test servers are simply killed.
    pub fn spawn(binary: &Path, args: &[String], log: PathBuf, kept: bool) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)
            .with_context(|| format!("creating log file {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if kept {
            command.process_group(0);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            child: Some(child),
            log,
            graceful: kept,
        })
    }

    /// Fails with the server's own output if it has already exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            anyhow::bail!("server was killed");
        };
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "server exited with {status}; its output:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The last lines the server wrote, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
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
            std::thread::sleep(Duration::from_millis(20));
        }
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
            env_var: "CARELINE_TESTKIT_UNSET_VARIABLE",
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
