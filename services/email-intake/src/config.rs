//! email-intake's configuration: the common service settings plus the SMTP
//! listener, its TLS certificate, the router it creates interactions on and the
//! router credentials of each tenant.

use std::net::SocketAddr;
use std::path::PathBuf;

use careline_kit::CommonConfig;

/// Default gRPC address of email-intake.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50053";
/// Default SMTP address (2525: no root needed; put port 25 in front of it).
pub const DEFAULT_SMTP_ADDR: &str = "127.0.0.1:2525";
/// Default name the SMTP server greets with.
pub const DEFAULT_SMTP_HOSTNAME: &str = "localhost";
/// Default largest message accepted (SMTP SIZE and IngestEmail), in bytes;
/// lowered at start-up to what the NATS server's max_payload can carry.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
/// Default router address.
pub const DEFAULT_ROUTER_URL: &str = "http://127.0.0.1:50051";

/// `careline-email-intake` flags and environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "careline-email-intake",
    about = "Careline email-intake: SMTP listener and gRPC ingest of members' mail"
)]
pub struct EmailIntakeConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// gRPC listen address (IngestEmail, ReplyEmail, GetThread).
    #[arg(long, env = "CARELINE_EMAIL_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// SMTP listen address.
    #[arg(long, env = "CARELINE_SMTP_ADDR", default_value = DEFAULT_SMTP_ADDR)]
    pub smtp_addr: SocketAddr,
    /// Host name in the SMTP greeting and EHLO reply.
    #[arg(long, env = "CARELINE_SMTP_HOSTNAME", default_value = DEFAULT_SMTP_HOSTNAME)]
    pub smtp_hostname: String,
    /// Largest message accepted, in bytes (advertised as SMTP SIZE).
    #[arg(long, env = "CARELINE_EMAIL_MAX_MESSAGE_BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// PEM certificate chain for STARTTLS; STARTTLS is offered only with a certificate.
    #[arg(long, env = "CARELINE_SMTP_TLS_CERT", requires = "smtp_tls_key")]
    pub smtp_tls_cert: Option<PathBuf>,
    /// PEM private key of `--smtp-tls-cert`.
    #[arg(long, env = "CARELINE_SMTP_TLS_KEY", requires = "smtp_tls_cert")]
    pub smtp_tls_key: Option<PathBuf>,
    /// The router's gRPC URL.
    #[arg(long, env = "CARELINE_ROUTER_URL", default_value = DEFAULT_ROUTER_URL)]
    pub router_url: String,
    /// The API key email-intake presents to the router for each tenant, as
    /// `tenant=key,tenant=key` (one of the keys in the tenant's `api_keys`).
    #[arg(
        long,
        env = "CARELINE_EMAIL_ROUTER_API_KEYS",
        default_value = "",
        hide_env_values = true
    )]
    pub router_api_keys: RouterKeys,
}

/// Router API keys by tenant id (shared with chat-gateway).
pub use careline_kit::RouterKeys;

impl EmailIntakeConfig {
    /// Defaults, as when no flag or variable is set.
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            listen_addr: DEFAULT_LISTEN_ADDR.parse().expect("valid default address"),
            smtp_addr: DEFAULT_SMTP_ADDR.parse().expect("valid default address"),
            smtp_hostname: DEFAULT_SMTP_HOSTNAME.to_owned(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            smtp_tls_cert: None,
            smtp_tls_key: None,
            router_url: DEFAULT_ROUTER_URL.to_owned(),
            router_api_keys: RouterKeys::default(),
        }
    }
}

impl careline_kit::service::ServiceConfig for EmailIntakeConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}
