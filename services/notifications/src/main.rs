//! `careline-notifications`: runs the notifications service until SIGTERM or ctrl-c.

use careline_notifications::NotificationsConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    careline_kit::service::run_binary::<NotificationsConfig, _, _, _>(
        "careline-notifications",
        careline_notifications::serve,
    )
    .await
}
