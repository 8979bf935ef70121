//! `careline-presence`: runs the presence service until SIGTERM or ctrl-c.

use std::process::ExitCode;

use anyhow::Context;
use careline_presence::PresenceConfig;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("careline-presence: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let env = std::env::vars().collect();
    let config: PresenceConfig =
        careline_kit::config::parse_from(std::env::args_os(), &env).unwrap_or_else(|e| e.exit());
    config.common.validate()?;
    let _telemetry = careline_kit::init_telemetry("careline-presence", &config.common)?;
    let shutdown = careline_kit::Shutdown::on_signals();
    if let Some(addr) = config.common.metrics_addr.socket_addr() {
        let stop = shutdown.wait();
        tokio::spawn(async move {
            if let Err(error) = careline_kit::metrics::serve_metrics_on(addr, stop).await {
                tracing::error!(%error, "metrics endpoint stopped");
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (in use? set --listen-addr)",
                config.listen_addr
            )
        })?;
    careline_presence::serve(config, listener, shutdown).await
}
