//! `careline-email-intake`: runs the email-intake service until SIGTERM or ctrl-c.

use careline_email_intake::EmailIntakeConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    careline_kit::service::run_binary::<EmailIntakeConfig, _, _, _>(
        "careline-email-intake",
        careline_email_intake::serve,
    )
    .await
}
