//! `careline-operator`: runs the Tenant / ContactQueue controller until SIGTERM or ctrl-c.

use careline_operator::OperatorConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    careline_kit::service::run_binary::<OperatorConfig, _, _, _>(
        "careline-operator",
        careline_operator::serve,
    )
    .await
}
