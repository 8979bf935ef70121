//! Running the built `careline` binary, and the demo tenant file that tests
//! edit line by line so every expected line number comes from the text itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root, where `careline up` finds its relative defaults.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The demo tenant file shipped in the repository.
pub fn demo_file() -> PathBuf {
    repo_root().join("deploy/tenants/demo-health.yaml")
}

/// The text of the demo tenant file.
pub fn demo_text() -> String {
    std::fs::read_to_string(demo_file()).expect("reading the demo tenant file")
}

/// A `careline` command run from the repository root, with no NATS settings from the environment.
pub fn careline() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_careline"));
    command
        .current_dir(repo_root())
        .env_remove("CARELINE_NATS_URL")
        .env_remove("CARELINE_NATS_REPLICAS");
    command
}

/// Runs `careline ARGS` to completion off the async runtime.
pub async fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || careline().args(&args).output())
        .await
        .expect("joining the careline process")
        .expect("running the careline binary")
}

/// stdout and stderr as text, for assertions and failure messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The 1-based line of the `nth` (1-based) line of `text` that equals `line`.
pub fn line_of(text: &str, line: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| *l == line)
        .nth(nth - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("occurrence {nth} of line {line:?} not found"))
}

/// `text` with its single line equal to `from` replaced by `to` (several lines allowed).
pub fn replace_line(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.lines().filter(|l| *l == from).count(),
        1,
        "line {from:?} must occur exactly once"
    );
    let mut out: String = text
        .lines()
        .map(|l| if l == from { to } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

/// A free loopback port (see [`careline_localdev::free_port`]).
pub fn free_port() -> u16 {
    careline_localdev::free_port().expect("binding 127.0.0.1:0")
}
