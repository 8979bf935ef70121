//! Tenant configuration in the NATS KV bucket `careline-tenants`, and a live
//! in-memory copy of it.
//!
//! [`TenantStore`] reads and writes the bucket (key = tenant id, value = the
//! JSON form of [`TenantConfig`]); it validates before writing, so a bad file
//! never reaches the services. [`TenantDirectory`] is what services hold: a
//! snapshot swapped atomically by a background task watching the bucket, so
//! every request reads the current configuration without I/O, and a change
//! applied by the operator or `careline config apply` takes effect live. Each
//! tenant carries the bucket revision it was written at, so background work
//! (the routing worker's tenant sync) re-applies only the tenants that changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use careline_domain::tenant::TenantConfig;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::BusError;

/// The KV bucket holding tenant configurations.
pub const TENANTS_BUCKET: &str = "careline-tenants";
/// Revisions kept per tenant, to see what changed and roll back by hand.
pub const TENANT_HISTORY: i64 = 5;
/// How long [`TenantDirectory::start`] waits for the bucket's current contents.
pub const INITIAL_LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before re-watching after the watch failed (e.g. NATS restarting).
const REWATCH_BACKOFF: Duration = Duration::from_millis(500);
/// How often the watch task checks whether the client reconnected.
const RECONNECT_CHECK: Duration = Duration::from_secs(1);

/// Reads and writes tenant configurations in the [`TENANTS_BUCKET`] bucket.
#[derive(Debug, Clone)]
pub struct TenantStore {
    js: jetstream::Context,
    kv: kv::Store,
}

impl TenantStore {
    /// Opens the bucket, creating it if absent, kept on `replicas` servers
    /// (`None`: as many as it has, one if new; see [`crate::streams`]); safe to
    /// call from many replicas at once.
    pub async fn open(
        js: &jetstream::Context,
        replicas: Option<usize>,
    ) -> Result<TenantStore, BusError> {
        // A KV bucket is a stream named KV_<bucket>. It is created directly because
        // async-nats 0.51's `create_key_value` first asks for account info, which it
        // cannot decode from nats-server 2.9 (Debian 12). Same settings as the client's.
        let config = stream::Config {
            name: format!("KV_{TENANTS_BUCKET}"),
            description: Some("Careline tenant configurations (JSON), key = tenant id".into()),
            subjects: vec![format!("$KV.{TENANTS_BUCKET}.>")],
            max_messages_per_subject: TENANT_HISTORY,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        crate::streams::create_or_update(js, config, replicas).await?;
        let kv = js
            .get_key_value(TENANTS_BUCKET)
            .await
            .map_err(BusError::nats(format!("open KV bucket {TENANTS_BUCKET}")))?;
        Ok(TenantStore { js: js.clone(), kv })
    }

    /// Validates `config` and writes it; returns the new revision. Nothing is written if invalid.
    pub async fn put(&self, config: &TenantConfig) -> Result<u64, BusError> {
        config
            .validate()
            .map_err(|source| BusError::InvalidTenantConfig {
                tenant: config.id.clone(),
                source,
            })?;
        self.kv
            .put(&config.id, config.to_json().into())
            .await
            .map_err(BusError::nats(format!("write tenant {}", config.id)))
    }

    /// The stored configuration of tenant `id`, if any.
    pub async fn get(&self, id: &str) -> Result<Option<TenantConfig>, BusError> {
        let value = self
            .kv
            .get(id)
            .await
            .map_err(BusError::nats(format!("read tenant {id}")))?;
        value.map(|bytes| parse_stored(id, &bytes)).transpose()
    }

    /// Every valid stored configuration, by tenant id; invalid ones are skipped with a warning.
    pub async fn list(&self) -> Result<Vec<TenantConfig>, BusError> {
        let mut keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(BusError::nats(format!("list keys of {TENANTS_BUCKET}")))?
            .filter_map(|key| async move { key.ok() })
            .collect()
            .await;
        keys.sort();
        let mut configs = Vec::with_capacity(keys.len());
        for key in keys {
            match self.get(&key).await {
                Ok(Some(config)) => configs.push(config),
                Ok(None) => {}
                Err(err @ BusError::StoredTenantConfig { .. }) => {
                    tracing::warn!(key = %key, error = %err, "skipping invalid tenant configuration");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(configs)
    }

    /// Removes tenant `id` (its history is kept until rolled off).
    pub async fn delete(&self, id: &str) -> Result<(), BusError> {
        self.kv
            .delete(id)
            .await
            .map_err(BusError::nats(format!("delete tenant {id}")))
    }

    /// The underlying bucket, e.g. for tools that write raw values.
    pub fn bucket(&self) -> &kv::Store {
        &self.kv
    }
}

/// Parses a stored value; the key must be the tenant id inside it.
fn parse_stored(key: &str, bytes: &[u8]) -> Result<TenantConfig, BusError> {
    let invalid = |source| BusError::StoredTenantConfig {
        key: key.to_owned(),
        source,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        invalid(careline_domain::ConfigError::single(
            "",
            None,
            format!("not UTF-8: {e}"),
        ))
    })?;
    let config = TenantConfig::from_json(text).map_err(invalid)?;
    if config.id != key {
        return Err(invalid(careline_domain::ConfigError::single(
            "id",
            None,
            format!(
                "is {:?} but the key is {key:?}: the key must be the tenant id",
                config.id
            ),
        )));
    }
    Ok(config)
}

/// One consistent view of every tenant, replaced whole on each change.
#[derive(Debug, Default)]
struct Snapshot {
    tenants: HashMap<String, Arc<TenantConfig>>,
    /// The bucket revision each tenant's configuration was written at.
    revisions: BTreeMap<String, u64>,
    /// Hex SHA-256 of an API key -> tenant id. Keys claimed by two tenants are left out.
    api_key_index: HashMap<String, String>,
}

impl Snapshot {
    fn with(&self, change: Change) -> Snapshot {
        let mut tenants = self.tenants.clone();
        let mut revisions = self.revisions.clone();
        match change {
            Change::Put(config, revision) => {
                revisions.insert(config.id.clone(), revision);
                tenants.insert(config.id.clone(), Arc::from(config));
            }
            Change::Remove(id) => {
                revisions.remove(&id);
                tenants.remove(&id);
            }
        }
        let api_key_index = index_api_keys(&tenants);
        Snapshot {
            tenants,
            revisions,
            api_key_index,
        }
    }
}

fn index_api_keys(tenants: &HashMap<String, Arc<TenantConfig>>) -> HashMap<String, String> {
    let mut index: HashMap<String, String> = HashMap::new();
    let mut ambiguous = Vec::new();
    for tenant in tenants.values() {
        for key in &tenant.api_keys {
            let hash = key.sha256.to_ascii_lowercase();
            match index.get(&hash) {
                Some(other) if *other != tenant.id => {
                    tracing::warn!(
                        tenant = %tenant.id,
                        other_tenant = %other,
                        api_key_id = %key.id,
                        "API key configured for two tenants; it is refused for both"
                    );
                    ambiguous.push(hash);
                }
                _ => {
                    index.insert(hash, tenant.id.clone());
                }
            }
        }
    }
    for hash in ambiguous {
        index.remove(&hash);
    }
    index
}

enum Change {
    /// A configuration and the bucket revision it was written at.
    Put(Box<TenantConfig>, u64),
    Remove(String),
}

/// State shared by the directory and its watch task.
#[derive(Debug)]
struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    changes: watch::Sender<u64>,
}

impl Shared {
    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn apply(&self, change: Change) {
        let mut slot = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        *slot = Arc::new(slot.with(change));
        drop(slot);
        self.changes.send_modify(|n| *n += 1);
    }
}

/// A live copy of every tenant's configuration, kept current by watching the bucket.
///
/// Dropping it (or cancelling the token given to [`TenantDirectory::start`]) stops the watch.
#[derive(Debug)]
pub struct TenantDirectory {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for TenantDirectory {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TenantDirectory {
    /// Loads every tenant from the bucket, then keeps following it until
    /// `shutdown` is cancelled or the directory is dropped.
    pub async fn start(
        store: &TenantStore,
        shutdown: &CancellationToken,
    ) -> Result<TenantDirectory, BusError> {
        let (changes, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            snapshot: RwLock::new(Arc::default()),
            changes,
        });
        let stop = shutdown.child_token();
        let watch = store
            .kv
            .watch_with_history(">")
            .await
            .map_err(BusError::nats(format!("watch KV bucket {TENANTS_BUCKET}")))?;
        // Whether there is anything to load; `kv::Store::status` is cached at open, so ask afresh.
        let stored_values = store
            .js
            .get_stream(format!("KV_{TENANTS_BUCKET}"))
            .await
            .map_err(BusError::nats(format!("read KV bucket {TENANTS_BUCKET}")))?
            .info()
            .await
            .map_err(BusError::nats(format!(
                "read status of KV bucket {TENANTS_BUCKET}"
            )))?
            .state
            .messages;
        let (loaded_tx, loaded_rx) = oneshot::channel();
        let loaded = if stored_values == 0 {
            let _ = loaded_tx.send(());
            None
        } else {
            Some(loaded_tx)
        };
        tokio::spawn(follow(
            store.kv.clone(),
            store.js.client(),
            watch,
            Arc::clone(&shared),
            stop.clone(),
            loaded,
        ));
        let directory = TenantDirectory { shared, stop };
        match tokio::time::timeout(INITIAL_LOAD_TIMEOUT, loaded_rx).await {
            Ok(Ok(())) => Ok(directory),
            Ok(Err(_)) | Err(_) => Err(BusError::Nats {
                action: format!("load the current contents of KV bucket {TENANTS_BUCKET}"),
                source: format!("not loaded within {INITIAL_LOAD_TIMEOUT:?}").into(),
            }),
        }
    }

    /// The configuration of tenant `id`.
    pub fn get(&self, id: &str) -> Option<Arc<TenantConfig>> {
        self.shared.current().tenants.get(id).cloned()
    }

    /// Every known tenant id, sorted.
    pub fn tenant_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.shared.current().tenants.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The bucket revision of every tenant's current configuration, by tenant id.
    ///
    /// A tenant's revision changes on every applied write of its configuration and
    /// only then, and a removed tenant is absent: a consumer that remembers what it
    /// last applied can tell exactly which tenants changed, even if it missed
    /// [`changes`](Self::changes) notifications in between.
    pub fn revisions(&self) -> BTreeMap<String, u64> {
        self.shared.current().revisions.clone()
    }

    /// The tenant owning the presented API key, if exactly one does.
    pub fn tenant_for_api_key(&self, key: &str) -> Option<Arc<TenantConfig>> {
        self.tenant_for_api_key_sha256(&hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// The tenant owning the API key with this lowercase hex SHA-256.
    pub fn tenant_for_api_key_sha256(&self, hash: &str) -> Option<Arc<TenantConfig>> {
        let snapshot = self.shared.current();
        let tenant = snapshot.tenants.get(snapshot.api_key_index.get(hash)?)?;
        tenant
            .api_key_tenant_matches(hash)
            .then(|| Arc::clone(tenant))
    }

    /// A counter bumped on every applied change; `changed().await` to react to updates
    /// (and [`revisions`](Self::revisions) to see which tenants changed).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Waits up to `deadline` for tenant `id` to be present.
    pub async fn wait_for(
        &self,
        id: &str,
        deadline: Duration,
    ) -> Result<Arc<TenantConfig>, BusError> {
        let mut changes = self.changes();
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(config) = self.get(id) {
                return Ok(config);
            }
            match tokio::time::timeout_at(until, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    return self.get(id).ok_or_else(|| BusError::TenantNotLoaded {
                        tenant: id.to_owned(),
                        waited: deadline,
                    });
                }
            }
        }
    }
}

/// The watch task: applies every entry, re-watching from the last revision seen
/// when the watch ends or fails, until `stop`.
async fn follow(
    kv: kv::Store,
    client: async_nats::Client,
    mut watch: kv::Watch,
    shared: Arc<Shared>,
    stop: CancellationToken,
    mut loaded: Option<oneshot::Sender<()>>,
) {
    let mut last_revision = 0;
    let mut reconnect_check = tokio::time::interval(RECONNECT_CHECK);
    loop {
        // The watch's ephemeral consumer does not survive a server restart, and the
        // client does not always notice; a new connection means: watch again.
        let connects = client.statistics().connects.load(Ordering::Relaxed);
        loop {
            let entry = tokio::select! {
                () = stop.cancelled() => return,
                _ = reconnect_check.tick() => {
                    if client.statistics().connects.load(Ordering::Relaxed) != connects {
                        tracing::info!(bucket = TENANTS_BUCKET, "reconnected to NATS; re-watching tenants");
                        break;
                    }
                    continue;
                }
                entry = watch.next() => entry,
            };
            match entry {
                Some(Ok(entry)) => {
                    last_revision = entry.revision;
                    let done_loading = entry.delta == 0;
                    apply_entry(&shared, entry);
                    if done_loading && let Some(loaded) = loaded.take() {
                        let _ = loaded.send(());
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, bucket = TENANTS_BUCKET, "tenant watch failed; re-watching");
                    break;
                }
                None => {
                    tracing::warn!(bucket = TENANTS_BUCKET, "tenant watch ended; re-watching");
                    break;
                }
            }
        }
        watch = loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(REWATCH_BACKOFF) => {}
            }
            match kv.watch_all_from_revision(last_revision + 1).await {
                Ok(watch) => break watch,
                Err(err) => {
                    tracing::warn!(error = %err, bucket = TENANTS_BUCKET, "could not re-watch tenants; retrying");
                }
            }
        };
    }
}

fn apply_entry(shared: &Shared, entry: kv::Entry) {
    match entry.operation {
        kv::Operation::Put => match parse_stored(&entry.key, &entry.value) {
            Ok(config) => {
                tracing::info!(tenant = %entry.key, revision = entry.revision, "tenant configuration applied");
                shared.apply(Change::Put(Box::new(config), entry.revision));
            }
            Err(err) => {
                tracing::warn!(
                    key = %entry.key,
                    revision = entry.revision,
                    error = %err,
                    "skipping invalid tenant configuration; keeping the previous one"
                );
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => {
            tracing::info!(tenant = %entry.key, revision = entry.revision, "tenant removed");
            shared.apply(Change::Remove(entry.key));
        }
    }
}
