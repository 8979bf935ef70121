//! The reconcilers. [`reconcile_tenant`] derives a tenant's configuration from its Tenant,
//! its ContactQueues and the Secrets holding its API keys, validates it with the domain's
//! rules, writes it to the configuration bucket when valid and changed, and reports the
//! outcome on the Tenant and each of its queues. A finalizer removes the configuration
//! when the Tenant is deleted. [`reconcile_queue`] only reports queues whose Tenant does
//! not exist; the Tenant's reconcile reports all the others.
//!
//! Only the replica holding the leader Lease runs these (see `leader`), but every step is
//! idempotent anyway: the same resources give the same configuration, written only when
//! the stored one differs; statuses are server-side applied by one field manager and
//! skipped when unchanged; and the Tenant is re-read from the API server before a write,
//! so a replica with a stale cache (or one that just lost the lease) does not write back a
//! Tenant being deleted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use careline_bus::TenantStore;
use careline_domain::TenantConfig;
use careline_domain::tenant::ApiKey;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};

use crate::Error;
use crate::crd::{ContactQueue, Tenant};
use crate::desired::{Located, Owner, tenant_config};
use crate::metrics;
use crate::status::{Verdict, report};

/// The finalizer that removes a deleted Tenant's configuration from the bucket.
pub const FINALIZER: &str = "careline.io/tenant-config";
/// How often every resource is reconciled even without changes: picks up changed Secrets
/// (not watched) and repairs what a race between replicas left behind.
pub const RESYNC: Duration = Duration::from_secs(300);
/// Retry delay after a missing Secret (Secrets are not watched).
pub const SECRET_RETRY: Duration = Duration::from_secs(30);
/// Retry delay after a failed reconcile.
pub const ERROR_BACKOFF: Duration = Duration::from_secs(15);

/// What every reconcile needs.
pub struct Context {
    /// The Kubernetes API.
    pub client: Client,
    /// The configuration bucket.
    pub store: TenantStore,
    /// Namespace of the Secrets that hold API keys (the operator's own by default).
    pub secret_namespace: String,
}

/// Runs both controllers until `shutdown` completes, then lets running reconciles finish.
pub async fn run(ctx: Arc<Context>, shutdown: careline_kit::Shutdown) {
    let tenants = Api::<Tenant>::all(ctx.client.clone());
    let queues = Api::<ContactQueue>::all(ctx.client.clone());
    let tenant_controller = Controller::new(tenants, watcher::Config::default())
        .watches(queues.clone(), watcher::Config::default(), |queue| {
            Some(ObjectRef::new(&queue.spec.tenant))
        })
        .graceful_shutdown_on(shutdown.wait())
        .run(reconcile_tenant, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let queue_controller = Controller::new(queues, watcher::Config::default())
        .graceful_shutdown_on(shutdown.wait())
        .run(reconcile_queue, error_policy, ctx)
        .for_each(|_| futures::future::ready(()));
    tokio::join!(tenant_controller, queue_controller);
}

/// Brings the bucket and the statuses in line with a Tenant (and removes its
/// configuration once it is deleted).
#[tracing::instrument(skip_all, fields(tenant = %tenant.name_any()))]
pub async fn reconcile_tenant(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let api = Api::<Tenant>::all(ctx.client.clone());
    let result = finalizer(&api, FINALIZER, tenant, |event| async {
        match event {
            Event::Apply(tenant) => apply_tenant(&tenant, &ctx).await,
            Event::Cleanup(tenant) => cleanup_tenant(&tenant, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    metrics::reconciled("tenant", &result, started.elapsed());
    result
}

/// Reports a ContactQueue whose Tenant does not exist.
#[tracing::instrument(skip_all, fields(queue = %queue.name_any(), tenant = %queue.spec.tenant))]
pub async fn reconcile_queue(queue: Arc<ContactQueue>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = async {
        let tenant = Api::<Tenant>::all(ctx.client.clone())
            .get_opt(&queue.spec.tenant)
            .await?;
        if tenant.is_some_and(|t| t.meta().deletion_timestamp.is_none()) {
            // The Tenant's reconcile (triggered by this queue's change) reports it.
            return Ok(Action::await_change());
        }
        let verdict = tenant_not_found(&queue.spec.tenant);
        metrics::invalid("contact_queue", &verdict.reason);
        report(&Api::all(ctx.client.clone()), queue.as_ref(), &verdict).await?;
        Ok(Action::requeue(RESYNC))
    }
    .await;
    metrics::reconciled("contact_queue", &result, started.elapsed());
    result
}

/// Logs a failed reconcile; the controller retries it after [`ERROR_BACKOFF`].
pub fn error_policy<K: Resource>(object: Arc<K>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %object.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(ERROR_BACKOFF)
}

async fn apply_tenant(cached: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let tenants = Api::<Tenant>::all(ctx.client.clone());
    // The cache may lag behind a deletion another replica is already cleaning up.
    let Some(tenant) = tenants.get_opt(&cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    if tenant.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = tenant.name_any();
    let queues = queues_of(ctx, &name).await?;
    let (api_keys, secret_problems) = resolve_api_keys(&tenant, ctx).await?;
    let desired = tenant_config(&tenant, &queues, api_keys);
    // Every problem at once: unreadable Secrets and the domain's rules.
    let mut problems = secret_problems;
    if let Err(error) = desired.config.validate() {
        problems.extend(desired.locate(&error));
    }

    let queue_api = Api::<ContactQueue>::all(ctx.client.clone());
    if problems.is_empty() {
        write_if_changed(ctx, &desired.config).await?;
        let verdict = Verdict::ready(
            "Applied",
            format!(
                "configuration with {} queue(s) is in the {} bucket",
                queues.len(),
                careline_bus::TENANTS_BUCKET
            ),
        );
        report(&tenants, &tenant, &verdict).await?;
        for queue in &queues {
            let verdict =
                Verdict::ready("Applied", format!("part of tenant {name}'s configuration"));
            report(&queue_api, queue, &verdict).await?;
        }
        return Ok(Action::requeue(RESYNC));
    }

    let verdict = tenant_verdict(&problems);
    tracing::info!(reason = %verdict.reason, problems = problems.len(), "tenant configuration invalid; nothing written");
    metrics::invalid("tenant", &verdict.reason);
    report(&tenants, &tenant, &verdict).await?;
    for queue in &queues {
        let verdict = queue_verdict(&name, &queue.name_any(), &problems);
        report(&queue_api, queue, &verdict).await?;
    }
    let missing_secret = problems.iter().any(|p| p.field.contains("secret_key_ref"));
    Ok(Action::requeue(if missing_secret {
        SECRET_RETRY
    } else {
        RESYNC
    }))
}

async fn cleanup_tenant(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let name = tenant.name_any();
    ctx.store.delete(&name).await?;
    tracing::info!("tenant configuration removed from the bucket");
    let queue_api = Api::<ContactQueue>::all(ctx.client.clone());
    for queue in queues_of(ctx, &name).await? {
        report(&queue_api, &queue, &tenant_not_found(&name)).await?;
    }
    Ok(Action::await_change())
}

/// The ContactQueues naming `tenant`, read from the API server (not a cache) so the
/// configuration written is never older than the last change a replica saw.
async fn queues_of(ctx: &Context, tenant: &str) -> Result<Vec<ContactQueue>, Error> {
    let all = Api::<ContactQueue>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(all
        .items
        .into_iter()
        .filter(|q| q.spec.tenant == tenant && q.meta().deletion_timestamp.is_none())
        .collect())
}

/// The digest of each API key the Tenant references, and a problem for each it cannot read.
async fn resolve_api_keys(
    tenant: &Tenant,
    ctx: &Context,
) -> Result<(Vec<ApiKey>, Vec<Located>), Error> {
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &ctx.secret_namespace);
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for (i, key) in tenant.spec.api_keys.iter().enumerate() {
        let reference = &key.secret_key_ref;
        let value = secrets
            .get_opt(&reference.name)
            .await?
            .and_then(|secret| secret.data?.remove(&reference.key));
        let text = value.and_then(|bytes| String::from_utf8(bytes.0).ok());
        match text.as_deref().map(str::trim_end) {
            Some(api_key) if !api_key.is_empty() => keys.push(ApiKey {
                id: key.id.clone(),
                sha256: careline_kit::auth::api_key_sha256_hex(api_key),
                scopes: key.scopes.clone(),
            }),
            _ => problems.push(Located {
                owner: Owner::Tenant,
                field: format!("spec.api_keys[{i}].secret_key_ref"),
                message: format!(
                    "no non-empty UTF-8 entry {:?} in Secret {:?} in namespace {:?}: create it with \
                     `kubectl -n {} create secret generic {} --from-literal={}=KEY`",
                    reference.key,
                    reference.name,
                    ctx.secret_namespace,
                    ctx.secret_namespace,
                    reference.name,
                    reference.key
                ),
            }),
        }
    }
    Ok((keys, problems))
}

/// Writes `config` unless the bucket already holds exactly it (a resync writes nothing).
async fn write_if_changed(ctx: &Context, config: &TenantConfig) -> Result<(), Error> {
    if ctx.store.get(&config.id).await?.as_ref() == Some(config) {
        return Ok(());
    }
    let revision = ctx.store.put(config).await?;
    metrics::written();
    tracing::info!(
        revision,
        queues = config.queues.len(),
        "tenant configuration written"
    );
    Ok(())
}

fn tenant_verdict(problems: &[Located]) -> Verdict {
    let reason = match problems.iter().find(|p| p.owner == Owner::Tenant) {
        Some(problem) => problem.reason(),
        None => "InvalidContactQueue".into(),
    };
    let message = problems
        .iter()
        .map(Located::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Verdict::not_ready(reason, format!("{message} (nothing written)"))
}

fn queue_verdict(tenant: &str, queue: &str, problems: &[Located]) -> Verdict {
    let own: Vec<&Located> = problems
        .iter()
        .filter(|p| p.owner == Owner::Queue(queue.to_owned()))
        .collect();
    match own.first() {
        Some(first) => Verdict::not_ready(
            first.reason(),
            own.iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        None => Verdict::not_ready(
            "TenantInvalid",
            format!(
                "tenant {tenant}'s configuration is invalid: see `kubectl describe tenant {tenant}`"
            ),
        ),
    }
}

fn tenant_not_found(tenant: &str) -> Verdict {
    Verdict::not_ready(
        "TenantNotFound",
        format!(
            "spec.tenant: there is no Tenant named {tenant:?}: create it or correct spec.tenant"
        ),
    )
}
