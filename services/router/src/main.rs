//! `careline-router`: runs the router service until SIGTERM or ctrl-c.

use careline_router::RouterConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    careline_kit::service::run_binary::<RouterConfig, _, _, _>(
        "careline-router",
        careline_router::serve,
    )
    .await
}
