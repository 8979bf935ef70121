//! The one error type of careline-kit.

use std::net::SocketAddr;

/// Everything that can go wrong while setting up or running the shared service plumbing.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// A configuration value is invalid; `field` names the env var and flag to fix.
    #[error("invalid config {field}: {message}")]
    Config {
        /// The setting at fault, e.g. `CARELINE_REDIS_URL (--redis-url)`.
        field: String,
        /// What is wrong with it and what would be accepted.
        message: String,
    },
    /// The tracing subscriber or the OTLP exporter could not be set up.
    #[error("telemetry setup failed: {0}")]
    Telemetry(String),
    /// The Prometheus recorder could not be installed (another metrics recorder is already set).
    #[error("metrics recorder could not be installed: {0}")]
    MetricsRecorder(String),
    /// A listener could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// NATS did not accept the connection.
    #[error("cannot connect to NATS (--nats-url / CARELINE_NATS_URL): {0}")]
    NatsUnreachable(String),
    /// An I/O error while serving (metrics endpoint).
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
    /// The reflection service could not decode a file descriptor set.
    #[error("gRPC reflection setup failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl KitError {
    /// A [`KitError::Config`] for the setting read from env var `env` or flag `--flag`.
    pub fn config(env: &str, flag: &str, message: impl Into<String>) -> Self {
        KitError::Config {
            field: format!("{env} (--{flag})"),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kit_error_crosses_tasks_and_converts_to_anyhow_style_boxes() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<KitError>();
    }
}
