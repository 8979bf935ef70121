//! What every service binary's `main` does, written once: parse the config
//! from flags and environment, validate it, start telemetry and the metrics
//! endpoint, bind the gRPC address, run the service until SIGTERM or ctrl-c,
//! and turn any failure into one readable line and a failing exit code.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::net::TcpListener;

use crate::{CommonConfig, Shutdown};

/// A service's configuration: the common settings plus its gRPC address.
pub trait ServiceConfig: clap::Parser {
    /// The settings every service shares.
    fn common(&self) -> &CommonConfig;
    /// Where the service's gRPC server listens.
    fn listen_addr(&self) -> SocketAddr;
}

/// Runs the service binary `name` with `serve` (the service's `serve(config, listener, shutdown)`).
pub async fn run_binary<C, F, Fut, E>(name: &'static str, serve: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, TcpListener, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let env = std::env::vars().collect();
    let config: C =
        crate::config::parse_from(std::env::args_os(), &env).unwrap_or_else(|e| e.exit());
    let fail = |error: &dyn Display| {
        eprintln!("{name}: {error:#}");
        ExitCode::FAILURE
    };
    if let Err(error) = config.common().validate() {
        return fail(&error);
    }
    let tls = match config.common().tls.load() {
        Ok(tls) => tls,
        Err(error) => return fail(&error),
    };
    let _telemetry = match crate::init_telemetry(name, config.common()) {
        Ok(guard) => guard,
        Err(error) => return fail(&error),
    };
    let shutdown = Shutdown::on_signals();
    if let Some(addr) = config.common().metrics_addr.socket_addr() {
        let stop = shutdown.wait();
        tokio::spawn(async move {
            if let Err(error) = crate::metrics::serve_metrics_on(addr, tls, stop).await {
                tracing::error!(%error, "metrics endpoint stopped");
            }
        });
    }
    let addr = config.listen_addr();
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            return fail(&format!(
                "cannot listen on {addr} (in use? set --listen-addr): {error}"
            ));
        }
    };
    match serve(config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// Waits for a service's background tasks once its server has stopped,
/// logging by name any that panicked (the service still ends cleanly).
pub async fn join_tasks<'a>(
    tasks: impl IntoIterator<Item = (tokio::task::JoinHandle<()>, &'a str)>,
) {
    for (task, name) in tasks {
        if let Err(error) = task.await {
            tracing::error!(%error, "{name} panicked");
        }
    }
}
