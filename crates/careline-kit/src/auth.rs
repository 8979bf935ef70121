//! Tenant API-key authentication: the tenant of a request comes only from its credential.
//!
//! [`TenantAuth`] is a tonic interceptor. It reads `authorization: Bearer <key>` (or
//! `x-api-key: <key>`), hashes the key with SHA-256 and asks an [`ApiKeyLookup`] which tenant
//! owns that hash; only hashes are ever stored or compared. A request without a credential goes
//! through unmarked (some RPCs, like the agent session stream, authenticate differently) and
//! handlers that need a tenant call [`tenant_of`]. A credential that is present but unknown or
//! malformed is refused here. The key itself is never logged.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Message of the UNAUTHENTICATED status for a present but unknown or malformed key.
pub const INVALID_KEY_MESSAGE: &str = "invalid API key: check the key configured for your tenant";
/// Message of the UNAUTHENTICATED status when an RPC needs a tenant and got no credential.
pub const MISSING_CREDENTIALS_MESSAGE: &str =
    "missing credentials: send `authorization: Bearer <api key>`";

/// Longest API key accepted; anything longer is refused before hashing.
pub const MAX_API_KEY_LEN: usize = 512;

/// Finds the tenant owning an API key, given the lowercase hex SHA-256 of the key.
pub trait ApiKeyLookup: Send + Sync + 'static {
    /// The tenant id owning the key with this hash, if any.
    fn tenant_for_key_sha256(&self, sha256_hex: &str) -> Option<String>;
}

/// Key hash (lowercase hex SHA-256) to tenant id; for tests and static setups.
impl ApiKeyLookup for HashMap<String, String> {
    fn tenant_for_key_sha256(&self, sha256_hex: &str) -> Option<String> {
        self.get(sha256_hex).cloned()
    }
}

/// The live tenant configuration: keys are looked up in every tenant's `api_keys`.
impl ApiKeyLookup for careline_bus::TenantDirectory {
    fn tenant_for_key_sha256(&self, sha256_hex: &str) -> Option<String> {
        self.tenant_for_api_key_sha256(sha256_hex)
            .map(|tenant| tenant.id.clone())
    }
}

impl<T: ApiKeyLookup + ?Sized> ApiKeyLookup for Arc<T> {
    fn tenant_for_key_sha256(&self, sha256_hex: &str) -> Option<String> {
        (**self).tenant_for_key_sha256(sha256_hex)
    }
}

/// The tenant proven by the request's credential; found in request extensions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthenticatedTenant(pub String);

/// Lowercase hex SHA-256 of an API key, the form keys are stored and looked up in.
pub fn api_key_sha256_hex(api_key: &str) -> String {
    hex::encode(Sha256::digest(api_key.as_bytes()))
}

/// Whether `key` is the agent's key: its hex SHA-256 equals the configured
/// one. The comparison takes the same time wherever the digests differ, and an
/// unknown agent is compared against a dummy digest so it takes as long as a wrong key.
/// Agent sessions (presence) and agent chat sessions (chat-gateway) log in with it.
pub fn agent_key_matches(agent: Option<&careline_domain::tenant::AgentConfig>, key: &str) -> bool {
    let presented = api_key_sha256_hex(key);
    let expected = agent.map_or_else(
        || "0".repeat(presented.len()),
        |a| a.key_sha256.to_ascii_lowercase(),
    );
    careline_domain::secret::constant_time_eq(presented.as_bytes(), expected.as_bytes())
        && agent.is_some()
}

/// Tonic interceptor that authenticates tenant API keys; wrap a service with
/// `FooServer::with_interceptor(svc, auth.clone())`.
#[derive(Clone)]
pub struct TenantAuth {
    lookup: Arc<dyn ApiKeyLookup>,
}

impl std::fmt::Debug for TenantAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantAuth").finish_non_exhaustive()
    }
}

impl TenantAuth {
    /// Authenticates against `lookup`.
    pub fn new(lookup: impl ApiKeyLookup) -> Self {
        Self {
            lookup: Arc::new(lookup),
        }
    }

    /// Authenticates against an already shared lookup.
    pub fn from_arc(lookup: Arc<dyn ApiKeyLookup>) -> Self {
        Self { lookup }
    }

    /// The tenant for the credential in `metadata`: `Ok(None)` without a credential,
    /// UNAUTHENTICATED if one is present but unknown or malformed.
    pub fn authenticate(
        &self,
        metadata: &MetadataMap,
    ) -> Result<Option<AuthenticatedTenant>, Status> {
        let Some(key) = presented_key(metadata)? else {
            return Ok(None);
        };
        let hash = api_key_sha256_hex(key);
        match self.lookup.tenant_for_key_sha256(&hash) {
            Some(tenant) => Ok(Some(AuthenticatedTenant(tenant))),
            None => {
                tracing::debug!("request refused: unknown API key");
                Err(Status::unauthenticated(INVALID_KEY_MESSAGE))
            }
        }
    }
}

impl Interceptor for TenantAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(tenant) = self.authenticate(request.metadata())? {
            tracing::Span::current().record("tenant", tenant.0.as_str());
            request.extensions_mut().insert(tenant);
        }
        Ok(request)
    }
}

/// The key from `authorization: Bearer <key>` or `x-api-key: <key>`; `None` when neither
/// header is sent.
fn presented_key(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
    let invalid = || Status::unauthenticated(INVALID_KEY_MESSAGE);
    let key = if let Some(value) = metadata.get("authorization") {
        let value = value.to_str().map_err(|_| invalid())?;
        let (scheme, key) = value.trim().split_once(' ').ok_or_else(invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(invalid());
        }
        key.trim()
    } else if let Some(value) = metadata.get("x-api-key") {
        value.to_str().map_err(|_| invalid())?.trim()
    } else {
        return Ok(None);
    };
    if key.is_empty() || key.len() > MAX_API_KEY_LEN {
        return Err(invalid());
    }
    Ok(Some(key))
}

/// The tenant authenticated by [`TenantAuth`] for this request, or UNAUTHENTICATED telling the
/// caller how to send credentials.
pub fn tenant_of<T>(request: &Request<T>) -> Result<String, Status> {
    request
        .extensions()
        .get::<AuthenticatedTenant>()
        .map(|t| t.0.clone())
        .ok_or_else(|| Status::unauthenticated(MISSING_CREDENTIALS_MESSAGE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn agent_key_must_hash_to_the_configured_digest() {
        let config = careline_domain::TenantConfig::from_yaml(include_str!(
            "../../../deploy/tenants/demo-health.yaml"
        ))
        .expect("demo tenant parses");
        let ana = config.agent("ana");
        assert!(agent_key_matches(ana, "demo-agent-ana"));
        for wrong in ["demo-agent-luis", "", "demo-agent-ana ", "DEMO-AGENT-ANA"] {
            assert!(!agent_key_matches(ana, wrong), "{wrong:?}");
        }
        assert!(!agent_key_matches(None, "demo-agent-ana"));
    }

    fn auth() -> TenantAuth {
        TenantAuth::new(HashMap::from([(
            api_key_sha256_hex("good-key"),
            "acme".to_owned(),
        )]))
    }

    fn request(header: &'static str, value: &'static str) -> Request<()> {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert(header, value.parse().unwrap());
        request
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        assert_eq!(
            api_key_sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn accepted_credential_forms() {
        for (header, value, tenant) in [
            ("authorization", "Bearer good-key", Some("acme")),
            ("authorization", "bearer   good-key ", Some("acme")),
            ("x-api-key", "good-key", Some("acme")),
        ] {
            let out = auth().call(request(header, value)).unwrap();
            assert_eq!(
                out.extensions()
                    .get::<AuthenticatedTenant>()
                    .map(|t| t.0.as_str()),
                tenant,
                "{header}: {value}"
            );
        }
    }

    #[test]
    fn malformed_or_unknown_credentials_are_refused() {
        for (header, value) in [
            ("authorization", "Bearer wrong-key"),
            ("authorization", "Basic Z29vZC1rZXk="),
            ("authorization", "good-key"),
            ("authorization", "Bearer "),
            ("x-api-key", ""),
        ] {
            let status = auth().call(request(header, value)).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{header}: {value}");
            assert_eq!(status.message(), INVALID_KEY_MESSAGE);
        }
    }

    #[test]
    fn no_credential_passes_without_tenant() {
        let out = auth().call(Request::new(())).unwrap();
        let status = tenant_of(&out).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), MISSING_CREDENTIALS_MESSAGE);
    }
}
