//! `careline-console`: runs the console service until SIGTERM or ctrl-c.

use careline_console::ConsoleConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    careline_kit::service::run_binary::<ConsoleConfig, _, _, _>(
        "careline-console",
        careline_console::serve,
    )
    .await
}
