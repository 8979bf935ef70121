//! `careline-presence`: runs the presence service until SIGTERM or ctrl-c.

use careline_presence::PresenceConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    careline_kit::service::run_binary::<PresenceConfig, _, _, _>(
        "careline-presence",
        careline_presence::serve,
    )
    .await
}
