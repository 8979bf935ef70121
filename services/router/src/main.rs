//! `careline-router`: runs the router service until SIGTERM or ctrl-c.

use careline_router::RouterConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = std::env::vars().collect();
    let config: RouterConfig =
        careline_kit::config::parse_from(std::env::args_os(), &env).unwrap_or_else(|e| e.exit());
    config.common.validate()?;
    let _telemetry = careline_kit::init_telemetry("careline-router", &config.common)?;
    let shutdown = careline_kit::Shutdown::on_signals();
    if let Some(addr) = config.common.metrics_addr.socket_addr() {
        tokio::spawn(careline_kit::metrics::serve_metrics_on(
            addr,
            shutdown.wait(),
        ));
    }
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    careline_router::serve(config, listener, shutdown).await
}
