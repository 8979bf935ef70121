//! The stored form of one tenant in the KV bucket.
//!
//! A tenant that fits in one NATS message is stored whole under its id, as
//! JSON, as it always was. A bigger one (thousands of agents) is split: its
//! agents go first, packed into chunks under keys of their own
//! (`<tenant>.agents.<version>.<n>`, a new version per write, so no two writes
//! share a chunk), then the document under the tenant id names those chunks by
//! key and revision. Readers only follow tenant ids (keys without a dot), so the
//! document appearing is the moment the new tenant appears, whole; the chunks of
//! the document it replaced are purged after.

use async_nats::jetstream::stream::Stream;
use bytes::Bytes;
use careline_domain::ConfigError;
use careline_domain::tenant::{AgentConfig, TenantConfig};
use serde::{Deserialize, Serialize};

use crate::BusError;

/// Room left in every message for the headers of a conditional write.
pub(super) const MESSAGE_HEADROOM: usize = 4 * 1024;
/// The key segment between the tenant id and the version in a chunk's key.
const CHUNK_SEGMENT: &str = "agents";
/// How a split tenant's document starts (its first field), telling it apart
/// from a whole tenant, whose first field is `id`.
const SPLIT_PREFIX: &[u8] = b"{\"agent_chunks\":";

/// The document of a split tenant: where its agents are, then the rest of it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitDocument {
    agent_chunks: Vec<ChunkRef>,
    /// The tenant without its agents.
    config: TenantConfig,
}

/// One chunk of agents: a JSON array of [`AgentConfig`] at `key`, written at `revision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChunkRef {
    pub key: String,
    pub revision: u64,
}

/// A tenant encoded for the bucket, before anything is written.
#[derive(Debug)]
pub(super) enum Encoded {
    /// Fits in one message: stored whole under the tenant id.
    Whole(Bytes),
    /// Its agents in chunks, each fitting in one message, and its settings.
    Split {
        settings: Box<TenantConfig>,
        chunks: Vec<Bytes>,
    },
}

impl Encoded {
    /// Encodes `config` into messages of at most `max_message` bytes, or says
    /// what does not fit (`max_payload` is the server's, for the message).
    pub(super) fn new(
        config: &TenantConfig,
        max_message: usize,
        max_payload: usize,
    ) -> Result<Encoded, BusError> {
        let whole = config.to_json();
        if whole.len() <= max_message {
            return Ok(Encoded::Whole(whole.into()));
        }
        let too_large = |what: String, bytes: usize| BusError::TenantTooLarge {
            tenant: config.id.clone(),
            what,
            bytes,
            max_payload,
            needed: bytes + MESSAGE_HEADROOM,
        };
        let mut chunks = Vec::new();
        let mut chunk = Vec::with_capacity(max_message);
        for agent in &config.agents {
            let json = serde_json::to_vec(agent).expect("an agent always serializes to JSON");
            // `[`, `]` and the separating comma.
            if json.len() + 2 > max_message {
                return Err(too_large(format!("agent {:?}", agent.id), json.len() + 2));
            }
            if !chunk.is_empty() && chunk.len() + json.len() + 2 > max_message {
                chunk.push(b']');
                chunks.push(Bytes::from(std::mem::take(&mut chunk)));
            }
            chunk.push(if chunk.is_empty() { b'[' } else { b',' });
            chunk.extend_from_slice(&json);
        }
        chunk.push(b']');
        chunks.push(chunk.into());
        let settings = config.without_agents();
        // The document's size with the longest keys and revisions it can hold.
        let refs: Vec<ChunkRef> = (0..chunks.len())
            .map(|n| ChunkRef {
                key: chunk_key(&config.id, &"f".repeat(VERSION_LEN), n),
                revision: u64::MAX,
            })
            .collect();
        let largest = document(&refs, &settings).len();
        if largest > max_message {
            return Err(too_large(
                "the tenant without its agents".to_string(),
                largest,
            ));
        }
        Ok(Encoded::Split {
            settings: Box::new(settings),
            chunks,
        })
    }
}

/// Length of a write's version in chunk keys (a UUID v7 in hex: unique, in time order).
const VERSION_LEN: usize = 32;

/// A new version for the chunks of one write.
pub(super) fn new_version() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The key of chunk `n` of `version` of `tenant`'s agents.
pub(super) fn chunk_key(tenant: &str, version: &str, n: usize) -> String {
    format!("{tenant}.{CHUNK_SEGMENT}.{version}.{n}")
}

/// The key pattern of every agent chunk of `tenant`.
pub(super) fn chunks_of(tenant: &str) -> String {
    format!("{tenant}.{CHUNK_SEGMENT}.>")
}

/// The version of chunk `key`, as [`chunk_key`] wrote it.
pub(super) fn chunk_version(key: &str) -> Option<&str> {
    key.split('.').nth(2)
}

/// How long ago `version` was made (the time in its UUID v7), if it is one.
pub(super) fn version_age(version: &str) -> Option<std::time::Duration> {
    let (secs, nanos) = uuid::Uuid::try_parse(version)
        .ok()?
        .get_timestamp()?
        .to_unix();
    let made = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
    std::time::SystemTime::now().duration_since(made).ok()
}

/// Whether `key` is a tenant id (the only keys readers follow), not a chunk.
pub(super) fn is_tenant_key(key: &str) -> bool {
    !key.contains('.')
}

/// The document of a split tenant whose chunks were written at `refs`.
pub(super) fn document(refs: &[ChunkRef], settings: &TenantConfig) -> Bytes {
    let document = SplitDocument {
        agent_chunks: refs.to_vec(),
        config: settings.clone(),
    };
    serde_json::to_vec(&document)
        .expect("a tenant document always serializes to JSON")
        .into()
}

/// The chunks a stored value names (none for a whole tenant or an unreadable value).
pub(super) fn chunks_named_by(value: &[u8]) -> Vec<ChunkRef> {
    if !value.starts_with(SPLIT_PREFIX) {
        return Vec::new();
    }
    serde_json::from_slice::<SplitDocument>(value)
        .map(|document| document.agent_chunks)
        .unwrap_or_default()
}

/// Reads the value stored under tenant id `key`, fetching its agent chunks
/// from `stream` by revision. `Ok(None)` when a chunk is gone: a newer write
/// replaced the document (chunks are purged only after that), so the caller
/// reads the tenant again, or a watcher waits for the newer document.
pub(super) async fn read(
    stream: &Stream,
    bucket: &str,
    key: &str,
    value: Bytes,
) -> Result<Option<TenantConfig>, BusError> {
    if !value.starts_with(SPLIT_PREFIX) {
        return tokio::task::spawn_blocking({
            let key = key.to_owned();
            move || parse_whole(&key, &value).map(Some)
        })
        .await
        .expect("parsing a tenant does not panic");
    }
    let document: SplitDocument =
        serde_json::from_slice(&value).map_err(|e| invalid(key, format!("{e}")))?;
    let mut chunks = Vec::with_capacity(document.agent_chunks.len());
    for chunk in &document.agent_chunks {
        let subject = format!("$KV.{bucket}.{}", chunk.key);
        match stream.get_raw_message(chunk.revision).await {
            Ok(message) if message.subject.as_str() == subject => chunks.push(message.payload),
            Ok(_) => return Ok(None),
            Err(err)
                if err.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                return Ok(None);
            }
            Err(err) => {
                return Err(BusError::nats(format!(
                    "read agent chunk {} of tenant {key}",
                    chunk.key
                ))(err));
            }
        }
    }
    // Parsing thousands of agents takes milliseconds: off the async workers,
    // so a service's request and timer tasks keep running meanwhile.
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || assemble(&key, document.config, &chunks).map(Some))
        .await
        .expect("parsing a tenant does not panic")
}

/// Parses a whole tenant; the key must be the tenant id inside it.
pub(super) fn parse_whole(key: &str, bytes: &[u8]) -> Result<TenantConfig, BusError> {
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(key, format!("not UTF-8: {e}")))?;
    let config = TenantConfig::from_json(text).map_err(|source| BusError::StoredTenantConfig {
        key: key.to_owned(),
        source,
    })?;
    check_id(key, config)
}

/// A split tenant's settings with the agents of its chunks, validated whole.
fn assemble(
    key: &str,
    mut config: TenantConfig,
    chunks: &[Bytes],
) -> Result<TenantConfig, BusError> {
    for (n, chunk) in chunks.iter().enumerate() {
        let agents: Vec<AgentConfig> = serde_json::from_slice(chunk)
            .map_err(|e| invalid(key, format!("agent chunk {n}: {e}")))?;
        config.agents.extend(agents);
    }
    config
        .validate()
        .map_err(|source| BusError::StoredTenantConfig {
            key: key.to_owned(),
            source,
        })?;
    check_id(key, config)
}

fn check_id(key: &str, config: TenantConfig) -> Result<TenantConfig, BusError> {
    if config.id != key {
        return Err(BusError::StoredTenantConfig {
            key: key.to_owned(),
            source: ConfigError::single(
                "id",
                None,
                format!(
                    "is {:?} but the key is {key:?}: the key must be the tenant id",
                    config.id
                ),
            ),
        });
    }
    Ok(config)
}

fn invalid(key: &str, message: String) -> BusError {
    BusError::StoredTenantConfig {
        key: key.to_owned(),
        source: ConfigError::single("", None, message),
    }
}

#[cfg(test)]
mod tests {
    use careline_domain::tenant::PerChannelOverride;

    use super::*;

    const DEMO: &str = include_str!("../../../../deploy/tenants/demo-health.yaml");

    fn tenant_with_agents(count: usize) -> TenantConfig {
        let mut config = TenantConfig::from_yaml(DEMO).unwrap();
        let template = config.agents[0].clone();
        config.agents = (0..count)
            .map(|i| AgentConfig {
                id: format!("agent-{i:05}"),
                capacity: PerChannelOverride::default(),
                ..template.clone()
            })
            .collect();
        config
    }

    #[test]
    fn a_small_tenant_is_stored_whole_as_before() {
        let config = tenant_with_agents(10);
        match Encoded::new(&config, 1 << 20, 1 << 20).unwrap() {
            Encoded::Whole(bytes) => assert_eq!(parse_whole(&config.id, &bytes).unwrap(), config),
            Encoded::Split { .. } => panic!("split a small tenant"),
        }
    }

    #[test]
    fn a_big_tenant_is_split_into_chunks_that_each_fit_and_reassemble_in_order() {
        let config = tenant_with_agents(2_000);
        let max_message = 64 * 1024;
        let Encoded::Split { settings, chunks } =
            Encoded::new(&config, max_message, max_message).unwrap()
        else {
            panic!("kept a tenant of {} bytes whole", config.to_json().len());
        };
        assert!(chunks.len() > 1, "{} chunk(s)", chunks.len());
        assert!(chunks.iter().all(|chunk| chunk.len() <= max_message));
        let refs: Vec<ChunkRef> = (0..chunks.len())
            .map(|n| ChunkRef {
                key: chunk_key(&config.id, &new_version(), n),
                revision: u64::MAX,
            })
            .collect();
        let stored = document(&refs, &settings);
        assert!(stored.len() <= max_message);
        assert_eq!(chunks_named_by(&stored), refs);
        assert!(chunks_named_by(config.to_json().as_bytes()).is_empty());
        assert!(refs.iter().all(|r| !is_tenant_key(&r.key)));
        assert!(is_tenant_key(&config.id));
        assert_eq!(assemble(&config.id, *settings, &chunks).unwrap(), config);
    }

    #[test]
    fn what_does_not_fit_is_named_with_its_size_the_limit_and_the_fix() {
        let config = tenant_with_agents(100);
        let err = Encoded::new(&config, 100, 100 + MESSAGE_HEADROOM).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("tenant \"demo-health\" does not fit in a NATS message: agent \"agent-00000\" takes "),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "more than this NATS server's max_payload of {} bytes allows",
                100 + MESSAGE_HEADROOM
            )) && text.contains("raise max_payload in the nats-server configuration"),
            "{text}"
        );
        assert!(!text.contains("reachable"), "{text}");

        let mut big_settings = tenant_with_agents(100);
        big_settings
            .after_hours_message
            .insert("en".into(), "x".repeat(8_000));
        let err = Encoded::new(&big_settings, 6_000, 6_000).unwrap_err();
        assert!(
            err.to_string()
                .contains("the tenant without its agents takes "),
            "{err}"
        );
    }
}
