//! Tenant configuration in the NATS KV bucket `careline-tenants`, and a live
//! in-memory copy of it.
//!
//! [`TenantStore`] reads and writes the bucket (key = tenant id, value = the
//! JSON form of [`TenantConfig`]; a tenant too big for one NATS message has its
//! agents in chunks of their own, see [`stored`]); it validates before writing,
//! so a bad file never reaches the services. [`TenantDirectory`] is what
//! services hold: a snapshot swapped atomically by a background task watching
//! the bucket, so every request reads the current configuration without I/O,
//! and a change applied by the operator or `careline config apply` takes effect
//! live, a whole tenant at a time. Each tenant carries the bucket revision it
//! was written at, so background work (the routing worker's tenant sync)
//! re-applies only the tenants that changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use careline_domain::tenant::TenantConfig;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::BusError;

mod stored;

use stored::{ChunkRef, Encoded};

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
/// Writes of one tenant [`TenantStore::put`] tries when other writers keep
/// replacing it between its read and its write.
const MAX_WRITE_ATTEMPTS: usize = 5;
/// Reads of one tenant [`TenantStore::get`] tries when a newer write keeps
/// replacing the agent chunks it is reading.
const MAX_READ_ATTEMPTS: usize = 5;
/// Age after which agent chunks that no document names are taken for the
/// leftovers of a write that stopped half-way (its process killed) and purged
/// by the tenant's next write; a write in progress is far younger.
const ABANDONED_AFTER: Duration = Duration::from_secs(10 * 60);
/// The keys readers follow: tenant ids, which have no dot (agent chunks have).
const TENANT_KEYS: &str = "*";

/// Reads and writes tenant configurations in the [`TENANTS_BUCKET`] bucket.
#[derive(Debug, Clone)]
pub struct TenantStore {
    js: jetstream::Context,
    kv: kv::Store,
    /// The bucket's stream, to read agent chunks by revision and purge old ones.
    stream: stream::Stream,
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
        let stream = bucket_stream(js).await?;
        Ok(TenantStore {
            js: js.clone(),
            kv,
            stream,
        })
    }

    /// Validates `config` and writes it; returns the new revision. Nothing is written if invalid.
    ///
    /// A tenant too big for one NATS message is written as agent chunks first,
    /// then the document naming them, on condition that nobody wrote the tenant
    /// meanwhile (else it starts over); the chunks of the document it replaced are
    /// purged after. Readers see the old tenant or the new one, never a mix.
    pub async fn put(&self, config: &TenantConfig) -> Result<u64, BusError> {
        config
            .validate()
            .map_err(|source| BusError::InvalidTenantConfig {
                tenant: config.id.clone(),
                source,
            })?;
        let max_payload = self.js.client().max_payload();
        let encoded = Encoded::new(
            config,
            max_payload.saturating_sub(stored::MESSAGE_HEADROOM),
            max_payload,
        )?;
        let id = &config.id;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let previous = self
                .kv
                .entry(id.as_str())
                .await
                .map_err(BusError::nats(format!("read tenant {id}")))?;
            let expected = previous.as_ref().map_or(0, |entry| entry.revision);
            let (value, written) = match &encoded {
                Encoded::Whole(value) => (value.clone(), Vec::new()),
                Encoded::Split { settings, chunks } => {
                    let refs = self.write_chunks(id, chunks).await?;
                    (stored::document(&refs, settings), refs)
                }
            };
            match self.kv.update(id.as_str(), value, expected).await {
                Ok(revision) => {
                    if let Some(previous) = previous {
                        self.purge_chunks(id, &stored::chunks_named_by(&previous.value))
                            .await;
                    }
                    self.purge_abandoned_chunks(id, written.first()).await;
                    return Ok(revision);
                }
                Err(err) => {
                    self.purge_chunks(id, &written).await;
                    if err.kind() != kv::UpdateErrorKind::WrongLastRevision {
                        return Err(BusError::nats(format!("write tenant {id}"))(err));
                    }
                }
            }
        }
        Err(BusError::TenantContended {
            tenant: id.clone(),
            action: "written",
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// Writes `chunks` of `tenant`'s agents under a new version; returns where.
    async fn write_chunks(
        &self,
        tenant: &str,
        chunks: &[Bytes],
    ) -> Result<Vec<ChunkRef>, BusError> {
        let version = stored::new_version();
        let mut refs = Vec::with_capacity(chunks.len());
        for (n, chunk) in chunks.iter().enumerate() {
            let key = stored::chunk_key(tenant, &version, n);
            match self.kv.put(&key, chunk.clone()).await {
                Ok(revision) => refs.push(ChunkRef { key, revision }),
                Err(err) => {
                    self.purge_chunks(tenant, &refs).await;
                    return Err(BusError::nats(format!("write agent chunk {key}"))(err));
                }
            }
        }
        Ok(refs)
    }

    /// Removes agent chunks from the stream entirely (no delete markers left
    /// behind). Best effort: a chunk left over wastes space, nothing else.
    async fn purge_chunks(&self, tenant: &str, chunks: &[ChunkRef]) {
        for chunk in chunks {
            if let Err(error) = self
                .stream
                .purge()
                .filter(format!("$KV.{TENANTS_BUCKET}.{}", chunk.key))
                .await
            {
                tracing::warn!(%tenant, chunk = %chunk.key, %error, "could not purge an old agent chunk");
            }
        }
    }

    /// Purges the chunks of `tenant` older than [`ABANDONED_AFTER`] other than
    /// those of the `current` write. Best effort, like [`Self::purge_chunks`].
    async fn purge_abandoned_chunks(&self, tenant: &str, current: Option<&ChunkRef>) {
        let current = current.and_then(|chunk| stored::chunk_version(&chunk.key));
        let prefix = format!("$KV.{TENANTS_BUCKET}.");
        let subjects: Result<Vec<(String, usize)>, _> = async {
            self.stream
                .info_with_subjects(format!("{prefix}{}", stored::chunks_of(tenant)))
                .await?
                .try_collect()
                .await
        }
        .await;
        let subjects = match subjects {
            Ok(subjects) => subjects,
            Err(error) => {
                tracing::warn!(%tenant, %error, "could not list agent chunks to purge leftovers");
                return;
            }
        };
        let abandoned: Vec<ChunkRef> = subjects
            .into_iter()
            .filter_map(|(subject, _)| {
                let key = subject.strip_prefix(&prefix)?.to_owned();
                let version = stored::chunk_version(&key)?;
                let old = stored::version_age(version).is_some_and(|age| age > ABANDONED_AFTER);
                (old && Some(version) != current).then_some(ChunkRef { key, revision: 0 })
            })
            .collect();
        self.purge_chunks(tenant, &abandoned).await;
    }

    /// The stored configuration of tenant `id`, if any.
    pub async fn get(&self, id: &str) -> Result<Option<TenantConfig>, BusError> {
        for _ in 0..MAX_READ_ATTEMPTS {
            let entry = self
                .kv
                .entry(id)
                .await
                .map_err(BusError::nats(format!("read tenant {id}")))?;
            let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
                return Ok(None);
            };
            // `None`: its chunks were replaced under it by a newer write; read that.
            if let Some(config) =
                stored::read(&self.stream, TENANTS_BUCKET, id, entry.value).await?
            {
                return Ok(Some(config));
            }
        }
        Err(BusError::TenantContended {
            tenant: id.to_owned(),
            action: "read",
            attempts: MAX_READ_ATTEMPTS,
        })
    }

    /// Every valid stored configuration, by tenant id; invalid ones are skipped with a warning.
    pub async fn list(&self) -> Result<Vec<TenantConfig>, BusError> {
        let mut keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(BusError::nats(format!("list keys of {TENANTS_BUCKET}")))?
            .filter_map(|key| async move { key.ok().filter(|key| stored::is_tenant_key(key)) })
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

    /// Removes tenant `id` (its history is kept until rolled off; its agent chunks are purged).
    pub async fn delete(&self, id: &str) -> Result<(), BusError> {
        let previous = self
            .kv
            .entry(id)
            .await
            .map_err(BusError::nats(format!("read tenant {id}")))?;
        self.kv
            .delete(id)
            .await
            .map_err(BusError::nats(format!("delete tenant {id}")))?;
        if let Some(previous) = previous {
            self.purge_chunks(id, &stored::chunks_named_by(&previous.value))
                .await;
        }
        Ok(())
    }

    /// The underlying bucket, e.g. for tools that write raw values.
    pub fn bucket(&self) -> &kv::Store {
        &self.kv
    }
}

/// The stream behind the bucket.
async fn bucket_stream(js: &jetstream::Context) -> Result<stream::Stream, BusError> {
    js.get_stream(format!("KV_{TENANTS_BUCKET}"))
        .await
        .map_err(BusError::nats(format!("read KV bucket {TENANTS_BUCKET}")))
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
            .watch_with_history(TENANT_KEYS)
            .await
            .map_err(BusError::nats(format!("watch KV bucket {TENANTS_BUCKET}")))?;
        // Whether there is any tenant to load (agent chunks alone do not count);
        // `kv::Store::status` is cached at open, so ask afresh.
        let stored_tenants = store
            .stream
            .info_with_subjects(format!("$KV.{TENANTS_BUCKET}.{TENANT_KEYS}"))
            .await
            .map_err(BusError::nats(format!(
                "read status of KV bucket {TENANTS_BUCKET}"
            )))?
            .try_next()
            .await
            .map_err(BusError::nats(format!(
                "read status of KV bucket {TENANTS_BUCKET}"
            )))?
            .is_some();
        let (loaded_tx, loaded_rx) = oneshot::channel();
        let loaded = if !stored_tenants {
            let _ = loaded_tx.send(());
            None
        } else {
            Some(loaded_tx)
        };
        tokio::spawn(follow(
            store.clone(),
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
    store: TenantStore,
    mut watch: kv::Watch,
    shared: Arc<Shared>,
    stop: CancellationToken,
    mut loaded: Option<oneshot::Sender<()>>,
) {
    let client = store.js.client();
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
                    let revision = entry.revision;
                    let done_loading = entry.delta == 0;
                    if let Err(err) = apply_entry(&store, &shared, entry).await {
                        // Its agent chunks could not be fetched: read it again.
                        tracing::warn!(error = %err, bucket = TENANTS_BUCKET, revision, "could not read a tenant's agents; re-watching from it");
                        last_revision = revision - 1;
                        break;
                    }
                    last_revision = revision;
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
            match store
                .kv
                .watch_from_revision(TENANT_KEYS, last_revision + 1)
                .await
            {
                Ok(watch) => break watch,
                Err(err) => {
                    tracing::warn!(error = %err, bucket = TENANTS_BUCKET, "could not re-watch tenants; retrying");
                }
            }
        };
    }
}

/// Applies one entry of the watch; fails only when NATS did not answer while
/// its agent chunks were fetched (an invalid value is skipped, not an error).
async fn apply_entry(
    store: &TenantStore,
    shared: &Shared,
    entry: kv::Entry,
) -> Result<(), BusError> {
    match entry.operation {
        kv::Operation::Put => {
            match stored::read(&store.stream, TENANTS_BUCKET, &entry.key, entry.value).await {
                Ok(Some(config)) => {
                    tracing::info!(tenant = %entry.key, revision = entry.revision, agents = config.agents.len(), "tenant configuration applied");
                    shared.apply(Change::Put(Box::new(config), entry.revision));
                }
                // Its chunks are purged only once a newer document was written:
                // that one follows in the watch.
                Ok(None) => {
                    tracing::debug!(tenant = %entry.key, revision = entry.revision, "tenant configuration already replaced; waiting for the newer one");
                }
                Err(err @ BusError::Nats { .. }) => return Err(err),
                Err(err) => {
                    tracing::warn!(
                        key = %entry.key,
                        revision = entry.revision,
                        error = %err,
                        "skipping invalid tenant configuration; keeping the previous one"
                    );
                }
            }
        }
        kv::Operation::Delete | kv::Operation::Purge => {
            tracing::info!(tenant = %entry.key, revision = entry.revision, "tenant removed");
            shared.apply(Change::Remove(entry.key));
        }
    }
    Ok(())
}
