//! Configuration every service takes, and how any clap config is parsed without library code
//! reading the process environment.
//!
//! Services define their own `#[derive(clap::Parser)] struct Config` and
//! `#[command(flatten)] common: CommonConfig`. `main.rs` calls
//! `parse_from(std::env::args_os(), &std::env::vars().collect())`, then `validate()`;
//! tests build structs directly or call [`parse_from`] with explicit args and env maps.
//! Names and defaults live here as constants (linkerd2-proxy's `env.rs`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use careline_bus::MAX_REPLICAS;
use clap::{Arg, Command, Parser};

use crate::KitError;
use crate::redis_client::RedisTarget;
use crate::tls::TlsConfig;

/// Env var for the Redis URL.
pub const ENV_REDIS_URL: &str = "CARELINE_REDIS_URL";
/// Env var for the NATS URL.
pub const ENV_NATS_URL: &str = "CARELINE_NATS_URL";
/// Env var for how many NATS servers keep a copy of each stream and KV bucket.
pub const ENV_NATS_REPLICAS: &str = "CARELINE_NATS_REPLICAS";
/// Env var for whether the relay's long batches go as JetStream atomic batches.
pub const ENV_NATS_ATOMIC_BATCHES: &str = "CARELINE_NATS_ATOMIC_BATCHES";
/// Env var for the metrics listen address (or `off`).
pub const ENV_METRICS_ADDR: &str = "CARELINE_METRICS_ADDR";
/// Env var for the log format (`text` or `json`).
pub const ENV_LOG_FORMAT: &str = "CARELINE_LOG_FORMAT";
/// Env var for the log filter (tracing `EnvFilter` syntax).
pub const ENV_LOG_FILTER: &str = "RUST_LOG";
/// Env var for the drain deadline after a shutdown signal.
pub const ENV_SHUTDOWN_GRACE_SECS: &str = "CARELINE_SHUTDOWN_GRACE_SECS";
/// Env var for the outbox bound past which new contacts are refused.
pub const ENV_OUTBOX_MAX_EVENTS: &str = "CARELINE_OUTBOX_MAX_EVENTS";
/// Env var for how many Redis replicas must hold a routing change before it is answered.
pub const ENV_REDIS_WAIT_REPLICAS: &str = "CARELINE_REDIS_WAIT_REPLICAS";
/// Env var for the concurrent calls one client connection may have open.
pub const ENV_MAX_STREAMS_PER_CONNECTION: &str = "CARELINE_MAX_STREAMS_PER_CONNECTION";
/// Env var for the longest a unary call may take before it is answered DEADLINE_EXCEEDED.
pub const ENV_REQUEST_TIMEOUT_SECS: &str = "CARELINE_REQUEST_TIMEOUT_SECS";
/// Env var for the HTTP/2 keepalive ping interval.
pub const ENV_KEEPALIVE_SECS: &str = "CARELINE_KEEPALIVE_SECS";
/// Env var for the NATS credentials file (JWT + nkey seed, as `nsc` writes it).
pub const ENV_NATS_CREDS: &str = "CARELINE_NATS_CREDS";
/// The standard OpenTelemetry env var: OTLP/gRPC collector endpoint; unset disables export.
pub const ENV_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard OpenTelemetry env var: which traces are recorded.
pub const ENV_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// The standard OpenTelemetry env var: the ratio of the `*traceidratio` samplers.
pub const ENV_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";

/// Default Redis URL (a local redis-server).
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";
/// Default NATS URL (a local nats-server).
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// Default metrics listen address.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
/// Default log filter.
pub const DEFAULT_LOG_FILTER: &str = "info";
/// Default drain deadline.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 20;
/// Default outbox bound: at a few thousand events a second, NATS may be away
/// for tens of seconds before new contacts are refused.
pub const DEFAULT_OUTBOX_MAX_EVENTS: u64 = 100_000;
/// Default concurrent calls (HTTP/2 streams) per client connection: an agent desktop needs
/// one, a gateway multiplexing many members' watch streams a few hundred.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 1_000;
/// Default request timeout: every unary call answers in milliseconds unless a dependency hangs.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Default HTTP/2 keepalive: a ping every 30 s finds a dead peer (and keeps load balancers
/// from dropping an idle agent stream) long before TCP would.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 30;
/// Longest accepted request timeout or keepalive interval.
pub const MAX_SERVER_LIMIT_SECS: u64 = 3600;
/// Most Redis replicas a change may wait for (one primary rarely has more).
pub const MAX_REDIS_WAIT_REPLICAS: u32 = 5;
/// Longest accepted drain deadline (Kubernetes' default grace period is 30 s; one hour is
/// surely a typo).
pub const MAX_SHUTDOWN_GRACE_SECS: u64 = 3600;

/// Settings shared by every service; `#[command(flatten)]` it into a service's config.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CommonConfig {
    /// Redis: one redis:// or rediss:// URL for a single server; a comma-separated list of
    /// node URLs or redis+cluster://host:port,host:port for a Redis Cluster.
    #[arg(long = "redis-url", env = ENV_REDIS_URL, default_value = DEFAULT_REDIS_URL)]
    pub redis_url: String,

    /// Redis replicas that must hold a routing change before it is answered (Redis WAIT, up
    /// to 1 s; a change answered without them is counted). 0 answers once the primary has it:
    /// a replica promoted after its primary crashed may then miss the last moment's changes.
    #[arg(long = "redis-wait-replicas", env = ENV_REDIS_WAIT_REPLICAS, default_value_t = 0)]
    pub redis_wait_replicas: u32,

    /// NATS URL (nats://, tls:// or a comma-separated list of them).
    #[arg(long = "nats-url", env = ENV_NATS_URL, default_value = DEFAULT_NATS_URL)]
    pub nats_url: String,

    /// NATS servers that keep a copy of the event stream and the tenant bucket (1 to 5; 3 on a
    /// 3-node cluster survives one node dying). Existing streams are updated to it; unset, they
    /// keep their count and new ones get 1.
    #[arg(long = "nats-replicas", env = ENV_NATS_REPLICAS)]
    pub nats_replicas: Option<usize>,

    /// Send the relay's long batches as JetStream atomic batches: one disk sync per batch
    /// instead of one per event; turn on only when the NATS servers run with
    /// `sync_interval: always` (with the default sync it is slower). `true` or `false`.
    #[arg(
        long = "nats-atomic-batches",
        env = ENV_NATS_ATOMIC_BATCHES,
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = parse_atomic_batches,
    )]
    pub nats_atomic_batches: bool,

    /// NATS credentials file (decentralized JWT auth, as `nsc` writes it); a user and
    /// password or a token go in the URL instead (nats://user:password@host:4222).
    #[arg(long = "nats-creds", env = ENV_NATS_CREDS)]
    pub nats_creds: Option<PathBuf>,

    /// Prometheus endpoint address (host:port), or `off`.
    #[arg(long = "metrics-addr", env = ENV_METRICS_ADDR, default_value = DEFAULT_METRICS_ADDR)]
    pub metrics_addr: MetricsAddr,

    /// Log line format.
    #[arg(long = "log-format", env = ENV_LOG_FORMAT, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, tracing EnvFilter syntax (e.g. `info,careline_router=debug`).
    #[arg(long = "log-filter", env = ENV_LOG_FILTER, default_value = DEFAULT_LOG_FILTER)]
    pub log_filter: String,

    /// Span export and sampling.
    #[command(flatten)]
    pub tracing: TracingConfig,

    /// Seconds to let in-flight requests finish after a shutdown signal.
    #[arg(long = "shutdown-grace-secs", env = ENV_SHUTDOWN_GRACE_SECS, default_value_t = DEFAULT_SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,

    /// Events that may wait per tenant in the routing outbox (NATS unreachable) before new
    /// contacts are refused with UNAVAILABLE; nothing already in the outbox is ever dropped.
    #[arg(long = "outbox-max-events", env = ENV_OUTBOX_MAX_EVENTS, default_value_t = DEFAULT_OUTBOX_MAX_EVENTS)]
    pub outbox_max_events: u64,
    /// Limits of the gRPC server.
    #[command(flatten)]
    pub server: ServerLimits,

    /// TLS of this service's servers and of its connections to others.
    #[command(flatten)]
    pub tls: TlsConfig,
}

/// Where spans go and which traces are recorded (README "Tracing"); `careline up` takes the
/// same flags.
#[derive(Debug, Clone, PartialEq, Eq, Default, clap::Args)]
pub struct TracingConfig {
    /// OTLP/gRPC collector endpoint (e.g. http://127.0.0.1:4317); unset: no span export.
    #[arg(long = "otlp-endpoint", env = ENV_OTLP_ENDPOINT)]
    pub otlp_endpoint: Option<String>,

    /// Which traces are recorded. The parentbased_* samplers follow the caller's decision, and
    /// a contact's later transitions follow its creation's, so a trace is whole or absent.
    #[arg(long = "trace-sampler", env = ENV_TRACES_SAMPLER, value_enum, default_value_t = TraceSampler::default())]
    pub sampler: TraceSampler,

    /// Share of new traces the *traceidratio samplers record, 0 to 1 (e.g. 0.1).
    #[arg(long = "trace-sample-ratio", env = ENV_TRACES_SAMPLER_ARG, default_value_t = SampleRatio::ALL)]
    pub sample_ratio: SampleRatio,
}

impl TracingConfig {
    /// Checks the endpoint; the error names the env var and flag.
    pub fn validate(&self) -> Result<(), KitError> {
        if let Some(endpoint) = &self.otlp_endpoint {
            check_url(endpoint, &["http", "https"], "an http:// or https:// URL")
                .map_err(|m| KitError::config(ENV_OTLP_ENDPOINT, "otlp-endpoint", m))?;
        }
        Ok(())
    }
}

/// OpenTelemetry's standard sampler names (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TraceSampler {
    /// Every trace.
    #[value(name = "always_on")]
    AlwaysOn,
    /// No trace.
    #[value(name = "always_off")]
    AlwaysOff,
    /// A share of traces, by trace id (the same decision in every service).
    #[value(name = "traceidratio")]
    TraceIdRatio,
    /// The parent's decision; every new trace.
    #[default]
    #[value(name = "parentbased_always_on")]
    ParentBasedAlwaysOn,
    /// The parent's decision; no new trace.
    #[value(name = "parentbased_always_off")]
    ParentBasedAlwaysOff,
    /// The parent's decision; a share of new traces, by trace id.
    #[value(name = "parentbased_traceidratio")]
    ParentBasedTraceIdRatio,
}

/// A sampling ratio, a number from 0 to 1 (never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRatio(f64);

// Parsing rejects NaN, the one value that breaks equality.
impl Eq for SampleRatio {}

impl SampleRatio {
    /// Every trace.
    pub const ALL: SampleRatio = SampleRatio(1.0);

    /// The ratio as a number from 0 to 1.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for SampleRatio {
    fn default() -> Self {
        SampleRatio::ALL
    }
}

impl FromStr for SampleRatio {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(SampleRatio(ratio)),
            _ => Err(format!(
                "{s:?} is not a ratio from 0 to 1 (e.g. 0.1 records one trace in ten)"
            )),
        }
    }
}

impl fmt::Display for SampleRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Limits every gRPC server applies (README "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ServerLimits {
    /// Concurrent calls (HTTP/2 streams) one client connection may have open; a client
    /// waits for a free stream beyond it.
    #[arg(long = "max-streams-per-connection", env = ENV_MAX_STREAMS_PER_CONNECTION, default_value_t = DEFAULT_MAX_STREAMS_PER_CONNECTION)]
    pub max_streams_per_connection: u32,
    /// Seconds a call may take to answer (for a stream: to start) before it is answered
    /// DEADLINE_EXCEEDED; a shorter `grpc-timeout` from the client applies too.
    #[arg(long = "request-timeout-secs", env = ENV_REQUEST_TIMEOUT_SECS, default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS)]
    pub request_timeout_secs: u64,
    /// Seconds between HTTP/2 keepalive pings; a connection that does not answer one within
    /// the same time is closed.
    #[arg(long = "keepalive-secs", env = ENV_KEEPALIVE_SECS, default_value_t = DEFAULT_KEEPALIVE_SECS)]
    pub keepalive_secs: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            keepalive_secs: DEFAULT_KEEPALIVE_SECS,
        }
    }
}

impl ServerLimits {
    /// Checks every field; the error names the env var and flag of the first bad one.
    pub fn validate(&self) -> Result<(), KitError> {
        if self.max_streams_per_connection == 0 {
            return Err(KitError::config(
                ENV_MAX_STREAMS_PER_CONNECTION,
                "max-streams-per-connection",
                format!(
                    "0 would refuse every call: use at least 1 (default \
                     {DEFAULT_MAX_STREAMS_PER_CONNECTION})"
                ),
            ));
        }
        for (value, env, flag) in [
            (
                self.request_timeout_secs,
                ENV_REQUEST_TIMEOUT_SECS,
                "request-timeout-secs",
            ),
            (self.keepalive_secs, ENV_KEEPALIVE_SECS, "keepalive-secs"),
        ] {
            if !(1..=MAX_SERVER_LIMIT_SECS).contains(&value) {
                return Err(KitError::config(
                    env,
                    flag,
                    format!("{value} is out of range: use 1 to {MAX_SERVER_LIMIT_SECS} seconds"),
                ));
            }
        }
        Ok(())
    }

    /// The request timeout as a [`Duration`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The keepalive interval as a [`Duration`].
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_secs)
    }
}

impl Default for CommonConfig {
    fn default() -> Self {
        Self {
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            redis_wait_replicas: 0,
            nats_url: DEFAULT_NATS_URL.to_owned(),
            nats_replicas: None,
            nats_atomic_batches: false,
            nats_creds: None,
            metrics_addr: MetricsAddr::Listen(
                DEFAULT_METRICS_ADDR
                    .parse()
                    .expect("default metrics address is a valid socket address"),
            ),
            log_format: LogFormat::Text,
            log_filter: DEFAULT_LOG_FILTER.to_owned(),
            tracing: TracingConfig::default(),
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            outbox_max_events: DEFAULT_OUTBOX_MAX_EVENTS,
            server: ServerLimits::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl CommonConfig {
    /// Checks every field; the error names the env var and flag of the first bad one.
    pub fn validate(&self) -> Result<(), KitError> {
        RedisTarget::parse(&self.redis_url)
            .map_err(|m| KitError::config(ENV_REDIS_URL, "redis-url", m))?;
        if self.redis_wait_replicas > MAX_REDIS_WAIT_REPLICAS {
            return Err(KitError::config(
                ENV_REDIS_WAIT_REPLICAS,
                "redis-wait-replicas",
                format!(
                    "{} is out of range: use 0 to {MAX_REDIS_WAIT_REPLICAS} (at most the \
                     replicas each Redis primary has)",
                    self.redis_wait_replicas
                ),
            ));
        }
        for server in self.nats_url.split(',') {
            check_url(server.trim(), &["nats", "tls"], "a nats:// or tls:// URL")
                .map_err(|m| KitError::config(ENV_NATS_URL, "nats-url", m))?;
        }
        if let Some(replicas) = self.nats_replicas
            && !(1..=MAX_REPLICAS).contains(&replicas)
        {
            return Err(KitError::config(
                ENV_NATS_REPLICAS,
                "nats-replicas",
                format!(
                    "{replicas} is out of range: use 1 to {MAX_REPLICAS} (at most the number of \
                     JetStream servers in the NATS cluster; 3 on a 3-node cluster)"
                ),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_filter).map_err(|e| {
            KitError::config(
                ENV_LOG_FILTER,
                "log-filter",
                format!("{:?} is not a valid filter: {e}", self.log_filter),
            )
        })?;
        self.tracing.validate()?;
        if self.shutdown_grace_secs == 0 || self.shutdown_grace_secs > MAX_SHUTDOWN_GRACE_SECS {
            return Err(KitError::config(
                ENV_SHUTDOWN_GRACE_SECS,
                "shutdown-grace-secs",
                format!(
                    "{} is out of range: use 1 to {MAX_SHUTDOWN_GRACE_SECS} seconds",
                    self.shutdown_grace_secs
                ),
            ));
        }
        if self.outbox_max_events == 0 {
            return Err(KitError::config(
                ENV_OUTBOX_MAX_EVENTS,
                "outbox-max-events",
                format!(
                    "0 would refuse every new contact: use at least 1 (default {DEFAULT_OUTBOX_MAX_EVENTS})"
                ),
            ));
        }
        if let Some(creds) = &self.nats_creds
            && let Err(e) = std::fs::metadata(creds)
        {
            return Err(KitError::config(
                ENV_NATS_CREDS,
                "nats-creds",
                format!("cannot read {}: {e}", creds.display()),
            ));
        }
        self.tls.load()?;
        self.server.validate()
    }

    /// The drain deadline as a [`Duration`].
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// `true` or `false`; anything else names the env var and the flag, since either may carry it.
fn parse_atomic_batches(value: &str) -> Result<bool, String> {
    value.parse().map_err(|_| {
        format!(
            "{value:?} is not true or false (set {ENV_NATS_ATOMIC_BATCHES} or \
             --nats-atomic-batches to true or false)"
        )
    })
}

/// `scheme://rest` with a non-empty rest and one of the allowed schemes.
fn check_url(value: &str, schemes: &[&str], expected: &str) -> Result<(), String> {
    let ok = value.split_once("://").is_some_and(|(scheme, rest)| {
        schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s))
            && !rest.is_empty()
            && !rest.starts_with('/')
    });
    if ok {
        Ok(())
    } else {
        // URLs may carry a password: show only what precedes any '@'.
        let shown = match value.rsplit_once('@') {
            Some((_, host)) => format!("<credentials>@{host}"),
            None => value.to_owned(),
        };
        Err(format!("{shown:?} is not {expected}"))
    }
}

/// Where the Prometheus endpoint listens, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAddr {
    /// No metrics endpoint.
    Off,
    /// Listen on this address.
    Listen(SocketAddr),
}

impl MetricsAddr {
    /// The address to bind, if enabled.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            MetricsAddr::Off => None,
            MetricsAddr::Listen(addr) => Some(*addr),
        }
    }
}

impl FromStr for MetricsAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(MetricsAddr::Off);
        }
        s.parse()
            .map(MetricsAddr::Listen)
            .map_err(|_| format!("{s:?} is not host:port (e.g. 0.0.0.0:9464) or `off`"))
    }
}

impl fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsAddr::Off => f.write_str("off"),
            MetricsAddr::Listen(addr) => addr.fmt(f),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Parses any clap config from explicit `args` (the first is the binary name) and an explicit
/// `env` map instead of the process environment.
///
/// Precedence is the usual one: flag, then env var, then default. `main.rs` passes
/// `std::env::args_os()` and `std::env::vars().collect()`, and calls `e.exit()` on error so
/// `--help` and usage errors behave as clap users expect.
pub fn parse_from<C, I, T>(args: I, env: &HashMap<String, String>) -> Result<C, clap::Error>
where
    C: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = with_env_map(C::command(), env);
    let matches = command.try_get_matches_from_mut(args)?;
    C::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// Replaces clap's own env lookups with lookups in `env`: an env value becomes the default.
fn with_env_map(command: Command, env: &HashMap<String, String>) -> Command {
    command
        .mut_args(|arg| env_as_default(arg, env))
        .mut_subcommands(|sub| with_env_map(sub, env))
}

fn env_as_default(arg: Arg, env: &HashMap<String, String>) -> Arg {
    let Some(name) = arg.get_env().and_then(|n| n.to_str()).map(str::to_owned) else {
        return arg;
    };
    let help = arg
        .get_help()
        .map(|h| format!("{h} [env: {name}]"))
        .unwrap_or_else(|| format!("[env: {name}]"));
    let arg = arg.env(None).help(help);
    match env.get(&name) {
        Some(value) => arg.default_value(value.clone()).required(false),
        None => arg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct ServiceConfig {
        #[command(flatten)]
        common: CommonConfig,
        #[arg(
            long = "grpc-addr",
            env = "CARELINE_GRPC_ADDR",
            default_value = "127.0.0.1:50051"
        )]
        grpc_addr: SocketAddr,
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let cfg: ServiceConfig = parse_from(["svc"], &env(&[])).unwrap();
        assert_eq!(cfg.common, CommonConfig::default());
        assert_eq!(cfg.grpc_addr, "127.0.0.1:50051".parse().unwrap());
        cfg.common.validate().unwrap();
    }

    #[test]
    fn env_map_overrides_default_and_flag_overrides_env() {
        let vars = env(&[
            (ENV_REDIS_URL, "redis://redis.internal:6379/"),
            (ENV_METRICS_ADDR, "off"),
            (ENV_LOG_FORMAT, "json"),
            ("CARELINE_GRPC_ADDR", "0.0.0.0:7000"),
        ]);
        let cfg: ServiceConfig =
            parse_from(["svc", "--redis-url", "rediss://other:6380/"], &vars).unwrap();
        assert_eq!(cfg.common.redis_url, "rediss://other:6380/");
        assert_eq!(cfg.common.metrics_addr, MetricsAddr::Off);
        assert_eq!(cfg.common.log_format, LogFormat::Json);
        assert_eq!(cfg.grpc_addr, "0.0.0.0:7000".parse().unwrap());
    }

    #[test]
    fn bad_metrics_addr_is_rejected_naming_the_flag() {
        let err =
            parse_from::<ServiceConfig, _, _>(["svc", "--metrics-addr", "nowhere"], &env(&[]))
                .unwrap_err();
        assert!(err.to_string().contains("--metrics-addr"), "{err}");
    }

    #[test]
    fn validation_names_the_field_for_each_bad_value() {
        type BreakIt = fn(&mut CommonConfig);
        let cases: [(&str, BreakIt); 9] = [
            ("CARELINE_REDIS_URL (--redis-url)", |c| {
                c.redis_url = "foo".into()
            }),
            ("CARELINE_NATS_URL (--nats-url)", |c| {
                c.nats_url = "nats://a:4222,http://b".into()
            }),
            ("CARELINE_NATS_REPLICAS (--nats-replicas)", |c| {
                c.nats_replicas = Some(0)
            }),
            ("CARELINE_NATS_REPLICAS (--nats-replicas)", |c| {
                c.nats_replicas = Some(MAX_REPLICAS + 1)
            }),
            ("RUST_LOG (--log-filter)", |c| c.log_filter = "[[".into()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT (--otlp-endpoint)", |c| {
                c.tracing.otlp_endpoint = Some("collector:4317".into())
            }),
            (
                "CARELINE_SHUTDOWN_GRACE_SECS (--shutdown-grace-secs)",
                |c| c.shutdown_grace_secs = 0,
            ),
            ("CARELINE_OUTBOX_MAX_EVENTS (--outbox-max-events)", |c| {
                c.outbox_max_events = 0
            }),
            (
                "CARELINE_REDIS_WAIT_REPLICAS (--redis-wait-replicas)",
                |c| c.redis_wait_replicas = MAX_REDIS_WAIT_REPLICAS + 1,
            ),
        ];
        for (field, break_it) in cases {
            let mut cfg = CommonConfig::default();
            break_it(&mut cfg);
            let err = cfg.validate().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid config {field}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn sampling_comes_from_the_standard_env_and_a_bad_ratio_names_the_flag() {
        let cfg: ServiceConfig = parse_from(
            ["svc"],
            &env(&[
                (ENV_TRACES_SAMPLER, "parentbased_traceidratio"),
                (ENV_TRACES_SAMPLER_ARG, "0.25"),
            ]),
        )
        .unwrap();
        assert_eq!(
            cfg.common.tracing.sampler,
            TraceSampler::ParentBasedTraceIdRatio
        );
        assert_eq!(cfg.common.tracing.sample_ratio.get(), 0.25);
        for bad in ["1.5", "-0.1", "NaN", "half"] {
            let flag = format!("--trace-sample-ratio={bad}");
            let err =
                parse_from::<ServiceConfig, _, _>(["svc", flag.as_str()], &env(&[])).unwrap_err();
            assert!(
                err.to_string().contains("a ratio from 0 to 1"),
                "{bad}: {err}"
            );
        }
        let err =
            parse_from::<ServiceConfig, _, _>(["svc", "--trace-sampler", "sometimes"], &env(&[]))
                .unwrap_err();
        assert!(
            err.to_string().contains("parentbased_traceidratio"),
            "{err}"
        );
    }

    #[test]
    fn nats_replicas_come_from_the_env_and_a_non_number_names_the_flag() {
        let cfg: ServiceConfig = parse_from(["svc"], &env(&[(ENV_NATS_REPLICAS, "3")])).unwrap();
        assert_eq!(cfg.common.nats_replicas, Some(3));
        cfg.common.validate().unwrap();
        let err = parse_from::<ServiceConfig, _, _>(["svc", "--nats-replicas", "three"], &env(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("--nats-replicas"), "{err}");
    }

    #[test]
    fn atomic_batches_are_off_by_default_on_from_the_env_or_flag_and_a_bad_value_names_the_var() {
        let cfg: ServiceConfig = parse_from(["svc"], &env(&[])).unwrap();
        assert!(!cfg.common.nats_atomic_batches);
        let cfg: ServiceConfig =
            parse_from(["svc"], &env(&[(ENV_NATS_ATOMIC_BATCHES, "true")])).unwrap();
        assert!(cfg.common.nats_atomic_batches);
        let cfg: ServiceConfig = parse_from(["svc", "--nats-atomic-batches"], &env(&[])).unwrap();
        assert!(cfg.common.nats_atomic_batches);
        let cfg: ServiceConfig = parse_from(
            ["svc", "--nats-atomic-batches=false"],
            &env(&[(ENV_NATS_ATOMIC_BATCHES, "true")]),
        )
        .unwrap();
        assert!(!cfg.common.nats_atomic_batches);
        let err =
            parse_from::<ServiceConfig, _, _>(["svc"], &env(&[(ENV_NATS_ATOMIC_BATCHES, "maybe")]))
                .unwrap_err();
        assert!(err.to_string().contains(ENV_NATS_ATOMIC_BATCHES), "{err}");
    }

    #[test]
    fn redis_url_error_matches_the_documented_wording() {
        let cfg = CommonConfig {
            redis_url: "foo".into(),
            ..CommonConfig::default()
        };
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            r#"invalid config CARELINE_REDIS_URL (--redis-url): "foo" is not a redis:// or rediss:// URL; use one URL for a single server, a comma-separated list of node URLs or redis+cluster://host:port,host:port for a Redis Cluster"#
        );
    }

    #[test]
    fn url_errors_hide_credentials() {
        let cfg = CommonConfig {
            redis_url: "http://user:s3cret@host:6379".into(),
            ..CommonConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
