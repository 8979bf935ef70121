//! The shipped demo tenant (`deploy/tenants/demo-health.yaml`) and its credentials,
//! as every test suite uses them, plus a second tenant for isolation tests.

use careline_domain::TenantConfig;
use careline_domain::tenant::{ApiKey, Scope};

/// The demo tenant file, exactly as shipped.
pub const YAML: &str = include_str!("../../../deploy/tenants/demo-health.yaml");
/// Tenant id of the demo tenant.
pub const TENANT: &str = "demo-health";
/// The demo tenant's API key (its digest is in the file).
pub const API_KEY: &str = "demo-health-key-0000000000000000";
/// The demo tenant's narrow key: scope `intake` only (create, watch, abandon).
pub const IVR_KEY: &str = "demo-ivr-key";

/// The demo tenant as shipped.
pub fn tenant() -> TenantConfig {
    TenantConfig::from_yaml(YAML).expect("the demo tenant parses")
}

/// The demo tenant with its business hours and holidays cleared, so every channel
/// is open whenever a test runs.
pub fn tenant_always_open() -> TenantConfig {
    let mut config = tenant();
    config.hours.clear();
    config.holidays.clear();
    config
}

/// The key a demo agent (`ana`, `luis`, `kim`) logs in with.
pub fn agent_key(agent_id: &str) -> String {
    format!("demo-agent-{agent_id}")
}

/// The demo tenant's chat widget key (public: it is in the demo page).
pub const WIDGET_KEY: &str = "demo-widget-key";

/// The chat widget key of a tenant made by [`second_tenant`] with id `id`.
pub fn widget_key(id: &str) -> String {
    format!("{id}-widget-key")
}

/// A copy of `base` as another tenant: its own id, name, inbound address, chat
/// widget key ([`widget_key`]) and one API key, `api_key`; queues and agents stay those of `base`.
pub fn second_tenant(base: &TenantConfig, id: &str, name: &str, api_key: &str) -> TenantConfig {
    let mut config = base.clone();
    config.id = id.into();
    config.name = name.into();
    config.inbound_email_addresses = vec![format!("members@{id}.example")];
    for widget in &mut config.chat.widgets {
        widget.key = widget_key(id);
    }
    config.api_keys = vec![ApiKey {
        id: id.into(),
        sha256: careline_kit::auth::api_key_sha256_hex(api_key),
        scopes: vec![Scope::Admin],
    }];
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_tenant_keeps_queues_but_not_the_demo_key() {
        let other = second_tenant(&tenant(), "other-plan", "Other Plan", "other-key");
        assert_eq!(other.id, "other-plan");
        assert_eq!(other.queues.len(), tenant().queues.len());
        let demo_digest = careline_kit::auth::api_key_sha256_hex(API_KEY);
        assert!(!other.api_key_tenant_matches(&demo_digest));
        assert!(other.api_key_tenant_matches(&careline_kit::auth::api_key_sha256_hex("other-key")));
    }
}
