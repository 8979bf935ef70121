//! Browser tests: one `node tests/browser/<script> URL SCREENSHOT` run of
//! headless Debian Chromium driven by playwright-core, read line by line
//! (one JSON event per line on stdout), and a check that the tools are
//! installed (`scripts/test.sh` installs them: `ensure_browser_tools` in
//! scripts/lib.sh).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;

/// The browser scripts, and the directory their playwright-core is installed in.
pub const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser");
/// Debian's Chromium; `CARELINE_CHROMIUM` overrides it.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// How long one browser session may take.
pub const BROWSER_DEADLINE: Duration = Duration::from_secs(120);

/// Chromium and the scripts' directory, or a message saying how to install them.
pub fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    const HOW: &str = "run scripts/test.sh (it installs them), or: \
        sudo apt-get install -y chromium nodejs npm && (cd tests/browser && npm ci)";
    let chromium = PathBuf::from(
        std::env::var("CARELINE_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.to_owned()),
    );
    if !chromium.is_file() {
        return Err(format!(
            "Chromium is not installed at {}: {HOW}",
            chromium.display()
        ));
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        return Err(format!("Node.js (`node`) is not on PATH: {HOW}"));
    }
    let dir = Path::new(BROWSER_DIR)
        .canonicalize()
        .map_err(|e| e.to_string())?;
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Err(format!(
            "playwright-core is not installed in {}: {HOW}",
            dir.display()
        ));
    }
    Ok((chromium, dir))
}

/// Where a test's screenshot is kept: `<tmp_dir>/browser/<name>` (pass the
/// test's `CARGO_TARGET_TMPDIR`), any older one removed.
pub fn screenshot_path(tmp_dir: &str, name: &str) -> PathBuf {
    let path = Path::new(tmp_dir).join(format!("browser/{name}"));
    let _ = std::fs::remove_file(&path);
    path
}

/// One `node tests/browser/<script> <url> <screenshot>` run, read as it goes.
pub struct BrowserRun {
    child: tokio::process::Child,
    events: JoinHandle<Vec<String>>,
    log: JoinHandle<String>,
}

impl BrowserRun {
    /// Starts `script` on `url` with `env`; panics when the tools are missing.
    pub fn start(script: &str, url: &str, screenshot: &Path, env: &[(&str, &str)]) -> BrowserRun {
        let (chromium, dir) = browser_tools().unwrap_or_else(|missing| panic!("{missing}"));
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join(script))
            .arg(url)
            .arg(screenshot)
            .env("CARELINE_CHROMIUM", &chromium)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let events = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut seen = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                println!("browser: {line}");
                seen.push(line);
            }
            seen
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut all = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        BrowserRun { child, events, log }
    }

    /// Waits for the script; returns its events, after asserting it passed.
    pub async fn passed(mut self) -> Vec<String> {
        let status: ExitStatus = tokio::time::timeout(BROWSER_DEADLINE, self.child.wait())
            .await
            .expect("the browser session ends in time")
            .expect("node runs");
        let log = self.log.await.expect("stderr reader");
        let seen = self.events.await.expect("stdout reader");
        assert!(
            status.success(),
            "the browser test failed ({status}):\n{log}"
        );
        assert!(
            seen.iter().any(|line| line.contains("\"passed\"")),
            "the browser script did not finish: {seen:?}\n{log}"
        );
        seen
    }
}
