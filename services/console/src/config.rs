//! The console's configuration: the common service settings, the HTTP
//! listener of the floor view, the router it reads queue stats from, the
//! KPI thresholds and the platform operator token.

use std::net::SocketAddr;
use std::time::Duration;

use careline_kit::{CommonConfig, RouterKeys};

/// Default gRPC address of the console (GetKpis).
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50057";
/// Default HTTP address of the floor view.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8092";
/// Default router address (WatchQueueStats for the floor view).
pub const DEFAULT_ROUTER_URL: &str = "http://127.0.0.1:50051";
/// Default short-abandon threshold: a member who leaves sooner is not counted
/// in the abandonment rate (misdials, immediate hang-ups).
pub const DEFAULT_SHORT_ABANDON_SECS: u64 = 5;
/// Default first-contact resolution window.
pub const DEFAULT_FCR_DAYS: u64 = 7;
/// Longest first-contact resolution window accepted.
pub const MAX_FCR_DAYS: u64 = 30;
/// Longest short-abandon threshold accepted.
pub const MAX_SHORT_ABANDON_SECS: u64 = 600;
/// Default lifetime of a floor view login.
pub const DEFAULT_SESSION_SECS: u64 = 8 * 3600;

/// `careline-console` flags and environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "careline-console",
    about = "Careline console: KPIs from the event log (gRPC) and the supervisors' live floor view (HTTP)"
)]
pub struct ConsoleConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// gRPC listen address (GetKpis).
    #[arg(long, env = "CARELINE_CONSOLE_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// HTTP listen address (the floor view at /floor).
    #[arg(long, env = "CARELINE_CONSOLE_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
    /// The router's gRPC URL.
    #[arg(long, env = "CARELINE_ROUTER_URL", default_value = DEFAULT_ROUTER_URL)]
    pub router_url: String,
    /// The API key the console presents to the router for each tenant, as
    /// `tenant=key,tenant=key` (one of the keys in the tenant's `api_keys`).
    #[arg(
        long,
        env = "CARELINE_CONSOLE_ROUTER_API_KEYS",
        default_value = "",
        hide_env_values = true
    )]
    pub router_api_keys: RouterKeys,
    /// Members who leave a queue sooner than this are short abandons, left out
    /// of the abandonment rate (seconds, 0-600).
    #[arg(long, env = "CARELINE_KPI_SHORT_ABANDON_SECS", default_value_t = DEFAULT_SHORT_ABANDON_SECS,
          value_parser = clap::value_parser!(u64).range(0..=MAX_SHORT_ABANDON_SECS))]
    pub short_abandon_secs: u64,
    /// A resolved contact whose member opens a new one within this many days
    /// does not count as resolved at first contact (1-30).
    #[arg(long, env = "CARELINE_KPI_FCR_DAYS", default_value_t = DEFAULT_FCR_DAYS,
          value_parser = clap::value_parser!(u64).range(1..=MAX_FCR_DAYS))]
    pub fcr_days: u64,
    /// Secret that signs floor view sessions; every replica must share it.
    /// Empty: a random one per process (sessions then last as long as the
    /// process and work on that replica only).
    #[arg(
        long,
        env = "CARELINE_CONSOLE_SESSION_SECRET",
        default_value = "",
        hide_env_values = true,
        value_parser = session_secret
    )]
    pub session_secret: String,
    /// Mark the session cookie `Secure` (set when the floor view is served over HTTPS).
    #[arg(long, env = "CARELINE_CONSOLE_SECURE_COOKIE", default_value_t = false)]
    pub secure_cookie: bool,
    /// The platform operator token: opens the operator view across tenants
    /// (gRPC PlatformOverview, /operator). A platform credential, never a
    /// tenant API key; empty: the operator view is off. At least 24 varied
    /// characters (`careline key new` makes one).
    #[arg(
        long,
        env = "CARELINE_CONSOLE_OPERATOR_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub operator_token: String,
    /// Lifetime of a floor view login (seconds).
    #[arg(long, env = "CARELINE_CONSOLE_SESSION_SECS", default_value_t = DEFAULT_SESSION_SECS,
          value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub session_secs: u64,
}

impl ConsoleConfig {
    /// Defaults, as when no flag or variable is set.
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            listen_addr: DEFAULT_LISTEN_ADDR.parse().expect("valid default address"),
            http_addr: DEFAULT_HTTP_ADDR.parse().expect("valid default address"),
            router_url: DEFAULT_ROUTER_URL.to_owned(),
            router_api_keys: RouterKeys::default(),
            short_abandon_secs: DEFAULT_SHORT_ABANDON_SECS,
            fcr_days: DEFAULT_FCR_DAYS,
            session_secret: String::new(),
            secure_cookie: false,
            operator_token: String::new(),
            session_secs: DEFAULT_SESSION_SECS,
        }
    }

    /// The short-abandon threshold.
    pub fn short_abandon(&self) -> Duration {
        Duration::from_secs(self.short_abandon_secs)
    }

    /// The first-contact resolution window.
    pub fn fcr_window(&self) -> Duration {
        Duration::from_secs(self.fcr_days * 24 * 3600)
    }

    /// Lifetime of a floor view login.
    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(self.session_secs)
    }

    /// Checks what clap cannot: a set operator token is strong enough.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.operator_token.is_empty()
            && let Err(weak) = careline_domain::secret::check_key_strength(&self.operator_token)
        {
            anyhow::bail!("--operator-token / CARELINE_CONSOLE_OPERATOR_TOKEN: {weak}");
        }
        Ok(())
    }
}

impl careline_kit::service::ServiceConfig for ConsoleConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}

/// An empty session secret, or a strong one (`careline key new`): a
/// placeholder left in a deployment's Secret stops start-up, naming it.
fn session_secret(text: &str) -> Result<String, String> {
    if !text.is_empty() {
        careline_domain::secret::check_key_strength(text)
            .map_err(|problem| format!("console session secret: {problem}"))?;
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ConsoleConfig;

    #[test]
    fn a_placeholder_session_secret_is_refused_and_empty_or_strong_ones_are_taken() {
        let parse = |secret: &str| {
            ConsoleConfig::try_parse_from(["careline-console", "--session-secret", secret])
        };
        let refused = parse("REPLACE with the key of `careline key new`")
            .expect_err("a placeholder is refused")
            .to_string();
        assert!(refused.contains("console session secret"), "{refused}");
        assert!(parse("").is_ok(), "empty: a random secret per process");
        assert_eq!(
            parse("dev-only-console-session-4Hw8Tn2pQ6vR")
                .expect("a strong secret")
                .session_secret,
            "dev-only-console-session-4Hw8Tn2pQ6vR"
        );
    }
}
