//! `careline-campaigns`: runs the campaigns service until SIGTERM or ctrl-c.

use careline_campaigns::CampaignsConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    careline_kit::service::run_binary::<CampaignsConfig, _, _, _>(
        "careline-campaigns",
        careline_campaigns::serve,
    )
    .await
}
