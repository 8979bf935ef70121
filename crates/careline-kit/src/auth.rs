//! Tenant API-key authentication: the tenant of a request comes only from its credential,
//! and what the request may do from the key's scopes.
//!
//! [`TenantAuth`] is a tonic interceptor. It reads `authorization: Bearer <key>` (or
//! `x-api-key: <key>`), hashes the key with SHA-256 and asks an [`ApiKeyLookup`] which tenant
//! owns that hash; only hashes are ever stored or compared. A request without a credential goes
//! through unmarked (some RPCs, like the agent session stream, authenticate differently) and
//! handlers call [`authorize`] with the scopes the RPC needs. A credential that is present but
//! unknown or malformed is refused here. The key itself is never logged.

use std::collections::HashMap;
use std::sync::Arc;

use careline_domain::tenant::Scope;
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

/// Finds who presents an API key, given the lowercase hex SHA-256 of the key.
pub trait ApiKeyLookup: Send + Sync + 'static {
    /// The tenant, key id and scopes of the key with this hash, if any tenant owns it.
    fn caller_for_key_sha256(&self, sha256_hex: &str) -> Option<Caller>;
}

/// Key hash (lowercase hex SHA-256) to caller; for tests and static setups.
impl ApiKeyLookup for HashMap<String, Caller> {
    fn caller_for_key_sha256(&self, sha256_hex: &str) -> Option<Caller> {
        self.get(sha256_hex).cloned()
    }
}

/// The live tenant configuration: keys are looked up in every tenant's `api_keys`.
impl ApiKeyLookup for careline_bus::TenantDirectory {
    fn caller_for_key_sha256(&self, sha256_hex: &str) -> Option<Caller> {
        let tenant = self.tenant_for_api_key_sha256(sha256_hex)?;
        let key = tenant.api_key(sha256_hex)?;
        Some(Caller {
            tenant: tenant.id.clone(),
            key_id: key.id.clone(),
            scopes: key.scopes.clone(),
        })
    }
}

impl<T: ApiKeyLookup + ?Sized> ApiKeyLookup for Arc<T> {
    fn caller_for_key_sha256(&self, sha256_hex: &str) -> Option<Caller> {
        (**self).caller_for_key_sha256(sha256_hex)
    }
}

/// Who made a request, proven by its API key; found in request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant owning the key.
    pub tenant: String,
    /// The key's id in the tenant configuration (safe to log; the key is not).
    pub key_id: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// The caller's tenant if its key has one of `needed` (or `admin`), otherwise
    /// PERMISSION_DENIED naming the scopes that would allow the call.
    pub fn require(&self, needed: &[Scope]) -> Result<&str, Status> {
        if Scope::permits(&self.scopes, needed) {
            return Ok(&self.tenant);
        }
        tracing::debug!(key_id = %self.key_id, "request refused: scope missing");
        Err(Status::permission_denied(missing_scope_message(
            &self.key_id,
            needed,
        )))
    }
}

/// What PERMISSION_DENIED says when key `key_id` lacks every scope in `needed`.
pub fn missing_scope_message(key_id: &str, needed: &[Scope]) -> String {
    let names: Vec<String> = needed
        .iter()
        .chain([&Scope::Admin])
        .map(|scope| format!("`{scope}`"))
        .collect();
    format!(
        "API key {key_id:?} may not make this call: it needs the scope {} in the key's `scopes` \
         in the tenant configuration",
        names.join(" or ")
    )
}

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

    /// The caller for the credential in `metadata`: `Ok(None)` without a credential,
    /// UNAUTHENTICATED if one is present but unknown or malformed.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Option<Caller>, Status> {
        let Some(key) = presented_key(metadata)? else {
            return Ok(None);
        };
        match self.caller_for_key(key) {
            Some(caller) => Ok(Some(caller)),
            None => {
                tracing::debug!("request refused: unknown API key");
                Err(Status::unauthenticated(INVALID_KEY_MESSAGE))
            }
        }
    }

    /// The caller presenting `key` (as typed into a login form, say), if a tenant owns it.
    pub fn caller_for_key(&self, key: &str) -> Option<Caller> {
        if key.is_empty() || key.len() > MAX_API_KEY_LEN {
            return None;
        }
        self.lookup.caller_for_key_sha256(&api_key_sha256_hex(key))
    }
}

impl Interceptor for TenantAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(caller) = self.authenticate(request.metadata())? {
            tracing::Span::current().record("tenant", caller.tenant.as_str());
            request.extensions_mut().insert(caller);
        }
        Ok(request)
    }
}

/// The key from `authorization: Bearer <key>` or `x-api-key: <key>`; `None` when neither
/// header is sent.
pub fn presented_key(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
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

/// The id of the API key [`TenantAuth`] authenticated the request with ("" without one),
/// for the access audit and logs.
pub fn key_id<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Caller>()
        .map(|caller| caller.key_id.clone())
        .unwrap_or_default()
}

/// Records in the access audit that API key `key_id` read `ids` of `tenant` through
/// `method`, or UNAVAILABLE: no contact content goes out unaudited.
pub async fn record_read(
    audit: &careline_bus::audit::AuditLog,
    key_id: &str,
    tenant: &str,
    method: &str,
    ids: Vec<String>,
) -> Result<(), Status> {
    if ids.is_empty() {
        return Ok(());
    }
    let actor = careline_bus::audit::Actor {
        kind: careline_proto::v1::ActorKind::ApiKey,
        id: key_id,
    };
    audit
        .record(tenant, method, actor, ids)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "access audit not recorded: the read is refused");
            Status::unavailable("the access audit cannot record this read right now; retry")
        })
}

/// The caller's tenant, if [`TenantAuth`] authenticated the request with a key that has one
/// of `needed` (or `admin`): UNAUTHENTICATED telling the caller how to send credentials
/// without one, PERMISSION_DENIED naming the scope when the key lacks it.
pub fn authorize<T>(request: &Request<T>, needed: &[Scope]) -> Result<String, Status> {
    let caller = request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated(MISSING_CREDENTIALS_MESSAGE))?;
    caller.require(needed).map(str::to_owned)
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
            Caller {
                tenant: "acme".to_owned(),
                key_id: "crm".to_owned(),
                scopes: vec![Scope::AgentActions],
            },
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
                out.extensions().get::<Caller>().map(|c| c.tenant.as_str()),
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
        let status = authorize(&out, &[Scope::Intake]).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), MISSING_CREDENTIALS_MESSAGE);
    }

    #[test]
    fn a_key_is_allowed_only_what_its_scopes_allow() {
        let out = auth()
            .call(request("authorization", "Bearer good-key"))
            .unwrap();
        assert_eq!(authorize(&out, &[Scope::AgentActions]).unwrap(), "acme");
        assert_eq!(
            authorize(&out, &[Scope::Supervisor, Scope::AgentActions]).unwrap(),
            "acme"
        );
        let status = authorize(&out, &[Scope::Supervisor]).unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "API key \"crm\" may not make this call: it needs the scope `supervisor` or \
             `admin` in the key's `scopes` in the tenant configuration"
        );
    }

    #[test]
    fn admin_is_allowed_everything() {
        for needed in Scope::ALL {
            assert!(Scope::permits(&[Scope::Admin], &[needed]), "{needed}");
        }
        assert!(!Scope::permits(&[Scope::Intake], &[Scope::Admin]));
    }
}
