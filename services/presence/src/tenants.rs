//! The tenant configurations presence reads: a shared handle on the bus's
//! live [`TenantDirectory`], and the API-key lookup the kit's
//! [`TenantAuth`](careline_kit::TenantAuth) interceptor needs. The only module
//! that knows the directory's API.

use std::sync::Arc;

use careline_bus::tenants::{TenantDirectory, TenantStore};
use careline_domain::tenant::TenantConfig;
use careline_kit::ApiKeyLookup;
use tokio_util::sync::CancellationToken;

/// Every tenant's configuration, kept current by watching the config bucket.
#[derive(Clone, Debug)]
pub struct Tenants {
    directory: Arc<TenantDirectory>,
}

impl Tenants {
    /// Loads the bucket and follows it until `shutdown`.
    pub async fn watch(
        store: &TenantStore,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Tenants> {
        Ok(Tenants {
            directory: Arc::new(TenantDirectory::start(store, shutdown).await?),
        })
    }

    /// The shared directory, for the routing worker.
    pub fn directory(&self) -> Arc<TenantDirectory> {
        Arc::clone(&self.directory)
    }

    /// The configuration of tenant `id`, if known.
    pub fn get(&self, id: &str) -> Option<Arc<TenantConfig>> {
        self.directory.get(id)
    }
}

impl ApiKeyLookup for Tenants {
    fn tenant_for_key_sha256(&self, sha256_hex: &str) -> Option<String> {
        let mut owners = self.directory.tenant_ids().into_iter().filter(|id| {
            self.get(id)
                .is_some_and(|config| config.api_key_tenant_matches(sha256_hex))
        });
        // A key claimed by two tenants authenticates neither.
        match (owners.next(), owners.next()) {
            (Some(owner), None) => Some(owner),
            _ => None,
        }
    }
}
