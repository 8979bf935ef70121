//! The operator's configuration: the common service settings plus its own.

use std::net::SocketAddr;

use careline_kit::CommonConfig;

/// Default gRPC (health) address of the operator.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50059";

/// `careline-operator` flags and environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "careline-operator",
    about = "Careline operator: Tenant and ContactQueue resources -> tenant configuration in NATS KV"
)]
pub struct OperatorConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// gRPC listen address (health and reflection).
    #[arg(long, env = "CARELINE_OPERATOR_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// The operator's namespace, holding its leader Lease and the Secrets with tenants' API
    /// keys; default: the service account's namespace in a cluster, the kubeconfig
    /// context's outside.
    #[arg(long, env = "CARELINE_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
    /// This replica's name in the leader Lease; default: a random one. The chart sets the
    /// pod name.
    #[arg(long, env = "CARELINE_OPERATOR_IDENTITY")]
    pub identity: Option<String>,
}

impl careline_kit::service::ServiceConfig for OperatorConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}
