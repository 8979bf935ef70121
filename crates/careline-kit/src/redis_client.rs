//! The one Redis client every service uses: a single server or a Redis
//! Cluster, chosen by the configured URL alone, behind one connection type
//! so the rest of the code has one path for both.
//!
//! `CARELINE_REDIS_URL` (`--redis-url`) takes
//! - one `redis://` or `rediss://` URL: a single server (or a managed
//!   endpoint that hides its replicas);
//! - a comma-separated list of such URLs: the seed nodes of a cluster;
//! - `redis+cluster://[user:password@]host:port[,host:port...]` (or
//!   `rediss+cluster://` for TLS): a cluster given by its seeds.
//!
//! `rediss://` is TLS, verified with the `--tls-ca` file (see [`crate::tls`]).
//!
//! [`RedisConnection`] implements redis-rs' `ConnectionLike`, so commands,
//! pipelines and `Script`s run on it unchanged. On a cluster a command or a
//! pipeline must stay within one hash slot: Careline keeps every key of a
//! tenant under the hash tag `{tenant}` and never mixes tenants in one
//! pipeline.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::Tls;

/// How long a reply from Redis may take. The client's default (500 ms)
/// fails big pipelines on a busy server, and a reply that times out leaves
/// the caller unsure whether a script ran.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting to one node may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a cluster request is retried while slots move or a primary
/// fails over (MOVED, TRYAGAIN, CLUSTERDOWN, a node reconnecting).
pub const CLUSTER_RETRIES: u32 = 8;

const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// Where Redis is, as parsed from the configured URL.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server.
    Single(String),
    /// A Redis Cluster, given by seed node URLs.
    Cluster(Vec<String>),
}

impl std::fmt::Debug for RedisTarget {
    // URLs may carry passwords: only the shape is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisTarget::Single(_) => f.write_str("RedisTarget::Single"),
            RedisTarget::Cluster(seeds) => write!(f, "RedisTarget::Cluster({} seeds)", seeds.len()),
        }
    }
}

impl RedisTarget {
    /// Parses a `--redis-url` value; the error says what is accepted
    /// (and never echoes a password).
    pub fn parse(url: &str) -> Result<RedisTarget, String> {
        let url = url.trim();
        for (cluster_scheme, node_scheme) in CLUSTER_SCHEMES {
            if let Some(rest) = strip_prefix_ignore_case(url, cluster_scheme) {
                let rest = rest.trim_end_matches('/');
                let (credentials, hosts) = match rest.rsplit_once('@') {
                    Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
                    None => (String::new(), rest),
                };
                let seeds = hosts
                    .split(',')
                    .map(|host| format!("{node_scheme}{credentials}{}/", host.trim()))
                    .collect::<Vec<_>>();
                for seed in &seeds {
                    check_node_url(seed)?;
                }
                return Ok(RedisTarget::Cluster(seeds));
            }
        }
        let nodes: Vec<&str> = url.split(',').map(str::trim).collect();
        for node in &nodes {
            check_node_url(node)?;
        }
        Ok(match nodes.as_slice() {
            [one] => RedisTarget::Single((*one).to_owned()),
            many => RedisTarget::Cluster(many.iter().map(|s| (*s).to_owned()).collect()),
        })
    }
}

/// `tls`'s certificates for a `rediss://` node URL; none for `redis://`, which redis-rs
/// refuses to combine with certificates (a service may serve TLS and talk to a plain Redis).
fn tls_certificates(node_url: &str, tls: &Tls) -> Option<redis::TlsCertificates> {
    strip_prefix_ignore_case(node_url, "rediss://").and_then(|_| tls.redis_certificates())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn check_node_url(value: &str) -> Result<(), String> {
    let ok = value.split_once("://").is_some_and(|(scheme, rest)| {
        ["redis", "rediss"]
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s))
            && !rest.is_empty()
            && !rest.starts_with('/')
            && !rest.starts_with(':')
    });
    if ok {
        Ok(())
    } else {
        let shown = match value.rsplit_once('@') {
            Some((_, host)) => format!("<credentials>@{host}"),
            None => value.to_owned(),
        };
        Err(format!(
            "{shown:?} is not a redis:// or rediss:// URL; use one URL for a single server, \
             a comma-separated list of node URLs or redis+cluster://host:port,host:port \
             for a Redis Cluster"
        ))
    }
}

/// A connection to a single server or to a cluster; cheap to clone (clones
/// share the underlying multiplexed connections) and reconnecting by itself.
#[derive(Clone)]
pub enum RedisConnection {
    /// A single server, through redis-rs' reconnecting `ConnectionManager`.
    Single(ConnectionManager),
    /// A Redis Cluster: commands go to the node owning their slot, and
    /// follow MOVED/ASK and failovers.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConnection::Single(_) => "RedisConnection::Single",
            RedisConnection::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

impl RedisConnection {
    /// Connects to what `url` names (see the module docs for the forms); `rediss://` servers
    /// are verified with `tls`'s CA file (the system roots without one), and `tls`'s
    /// certificate is presented to servers that verify clients.
    pub async fn connect(url: &str, tls: &Tls) -> RedisResult<RedisConnection> {
        let target = RedisTarget::parse(url).map_err(|message| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "invalid Redis URL",
                message,
            ))
        })?;
        match target {
            RedisTarget::Single(url) => {
                let client = match tls_certificates(&url, tls) {
                    Some(certificates) => {
                        redis::Client::build_with_tls(url.as_str(), certificates)?
                    }
                    None => redis::Client::open(url.as_str())?,
                };
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                Ok(RedisConnection::Single(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
            RedisTarget::Cluster(seeds) => {
                let mut builder = ClusterClientBuilder::new(seeds.iter().map(String::as_str));
                if let Some(certificates) =
                    seeds.first().and_then(|seed| tls_certificates(seed, tls))
                {
                    builder = builder.certs(certificates);
                }
                let client = builder
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(CLUSTER_RETRIES)
                    .build()?;
                Ok(RedisConnection::Cluster(
                    client.get_async_connection().await?,
                ))
            }
        }
    }

    /// Redis `WAIT` on the primary that holds `key`: waits until `replicas`
    /// of its replicas have every write this connection sent it, or until
    /// `timeout`; returns how many have.
    pub async fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas)
            .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let acked = match self {
            RedisConnection::Single(conn) => wait.query_async(conn).await?,
            // Routed by hand: redis-rs sends a key-less WAIT to every primary.
            RedisConnection::Cluster(conn) => {
                let primary = Route::with_slot(Slot::for_key(key), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(primary));
                redis::from_redis_value(conn.route_command(wait, routing).await?)?
            }
        };
        Ok(acked)
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_command(cmd),
            RedisConnection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(conn) => conn.get_db(),
            RedisConnection::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_name_a_single_server_or_a_cluster() {
        let cases: &[(&str, Result<RedisTarget, ()>)] = &[
            (
                "redis://127.0.0.1:6379/",
                Ok(RedisTarget::Single("redis://127.0.0.1:6379/".into())),
            ),
            (
                "redis://a:7000/, redis://b:7001/",
                Ok(RedisTarget::Cluster(vec![
                    "redis://a:7000/".into(),
                    "redis://b:7001/".into(),
                ])),
            ),
            (
                "redis+cluster://a:7000,b:7001",
                Ok(RedisTarget::Cluster(vec![
                    "redis://a:7000/".into(),
                    "redis://b:7001/".into(),
                ])),
            ),
            (
                "rediss+cluster://user:pw@a:7000,b:7001/",
                Ok(RedisTarget::Cluster(vec![
                    "rediss://user:pw@a:7000/".into(),
                    "rediss://user:pw@b:7001/".into(),
                ])),
            ),
            ("http://a:7000", Err(())),
            ("redis://a:7000,http://b", Err(())),
            ("redis+cluster://", Err(())),
            ("redis+cluster://a:1,", Err(())),
        ];
        for (url, expected) in cases {
            let parsed = RedisTarget::parse(url).map_err(|_| ());
            assert_eq!(&parsed, expected, "{url}");
        }
    }

    #[test]
    fn a_bad_url_is_explained_without_its_password() {
        let error = RedisTarget::parse("http://user:secret@host:1").unwrap_err();
        assert!(!error.contains("secret"), "{error}");
        assert!(error.contains("redis+cluster://"), "{error}");
    }
}
