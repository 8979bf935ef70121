//! The custom resources the operator reconciles, group `careline.io`, version `v1alpha1`:
//! [`Tenant`] (everything of a tenant configuration except its queues) and [`ContactQueue`]
//! (one queue, naming its tenant). Their specs reuse the domain's configuration types, so
//! the fields are the ones of a `careline config apply -f` file, with the same snake_case
//! names; only API keys differ: a Tenant names Secrets holding them instead of digests.
//!
//! Both kinds are cluster-scoped. A tenant id is global (it is the key in the NATS KV
//! bucket and the `{tenant}` hash tag in Redis), so the Tenant's name is its id and the API
//! server guarantees it is unique; a namespaced Tenant would let two namespaces claim one
//! id and overwrite each other's configuration. ContactQueues follow their Tenant.
//!
//! The YAML of both CustomResourceDefinitions is generated from these types by [`crds_yaml`]
//! and committed under `charts/careline/crds/`; a test fails when the two drift apart.

use std::collections::BTreeMap;

use careline_domain::Language;
use careline_domain::campaign::OutreachSettings;
use careline_domain::tenant::{
    AgentConfig, ChatSettings, EmailSettings, Limits, OpeningHours, QualitySettings, QueueConfig,
    RoutingSettings, SurveySettings,
};
use kube::CustomResource;
use kube::core::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of both resources.
pub const GROUP: &str = "careline.io";
/// The condition every Careline resource reports.
pub const READY: &str = "Ready";

/// A tenant (health plan): its identity, hours, languages, routing settings, agents and API
/// keys. Its queues are [`ContactQueue`] resources naming it. The tenant id is `metadata.name`.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "careline.io",
    version = "v1alpha1",
    kind = "Tenant",
    status = "ConfigStatus",
    category = "careline",
    doc = "A Careline tenant; metadata.name is the tenant id. Queues are ContactQueue resources.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// Display name.
    pub name: String,
    /// IANA time zone name, e.g. `America/Denver`.
    pub time_zone: String,
    /// Languages the tenant serves, e.g. `[en, es]`.
    pub languages: Vec<Language>,
    /// Opening windows; none means always open.
    #[serde(default)]
    pub hours: Vec<OpeningHours>,
    /// Days closed all day (`YYYY-MM-DD`).
    #[serde(default)]
    pub holidays: Vec<chrono::NaiveDate>,
    /// Language code (`en`, `es`) -> message for contacts outside opening hours.
    #[serde(default)]
    pub after_hours_message: BTreeMap<String, String>,
    /// Where members may write.
    pub contact_email: String,
    /// The member portal.
    #[serde(default)]
    pub portal_url: String,
    /// Addresses whose mail becomes this tenant's email interactions.
    #[serde(default)]
    pub inbound_email_addresses: Vec<String>,
    /// How inbound mail becomes interactions (queue, retention).
    #[serde(default)]
    pub email: EmailSettings,
    /// The chat channel: widget keys and the origins allowed to embed them.
    #[serde(default)]
    pub chat: ChatSettings,
    /// API keys of the tenant's integrations, each read from a Secret.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyRef>,
    /// Routing behaviour; defaults suit a small contact center.
    #[serde(default)]
    pub routing: RoutingSettings,
    /// Agents who may log in.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// Request rates the tenant's integrations may use.
    #[serde(default)]
    pub limits: Limits,
    /// Post-resolution email surveys (off until `channels` names one).
    #[serde(default)]
    pub surveys: SurveySettings,
    /// Outreach campaigns and the hours they may contact members.
    #[serde(default)]
    pub outreach: OutreachSettings,
    /// Quality review: the rubric supervisors score resolved contacts against.
    #[serde(default)]
    pub quality: QualitySettings,
}

/// An API key kept in a Secret; the operator stores only its SHA-256.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRef {
    /// The key's id, shown in logs instead of the key.
    pub id: String,
    /// The Secret entry holding the key, in the operator's Secret namespace.
    pub secret_key_ref: SecretKeyRef,
    /// What the key may do: intake, agent_actions, supervisor, admin (at least one).
    pub scopes: Vec<careline_domain::tenant::Scope>,
}

/// One entry of a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The entry within the Secret's `data`.
    pub key: String,
}

/// One queue of a tenant: the tenant's name plus the fields of a queue in a tenant file.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "careline.io",
    version = "v1alpha1",
    kind = "ContactQueue",
    status = "ConfigStatus",
    category = "careline",
    doc = "A queue of a Careline tenant; merged into the Tenant named by spec.tenant.",
    // A queue that changed tenants would stay in the old tenant's configuration until a
    // resync (a change event only names the new tenant); delete and create instead, which
    // reconciles both.
    validation = Rule::new("self.spec.tenant == oldSelf.spec.tenant").message(
        "spec.tenant cannot change: delete this ContactQueue and create one for the other tenant"
    ),
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".spec.tenant"}"#,
    printcolumn = r#"{"name":"Queue","type":"string","jsonPath":".spec.id"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
pub struct ContactQueueSpec {
    /// The name of the Tenant this queue belongs to.
    pub tenant: String,
    /// The queue, as under `queues:` in a tenant file.
    #[serde(flatten)]
    pub queue: QueueConfig,
}

/// What the operator last concluded about a resource.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True once the tenant's configuration is in the configuration bucket.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A status condition, shaped like Kubernetes' own (`kubectl wait --for=condition=Ready`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's name, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word saying why, e.g. `InvalidTimeZone`.
    pub reason: String,
    /// What is wrong and what to do, naming the fields.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl ConfigStatus {
    /// The `Ready` condition, if reported.
    pub fn ready(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == READY)
    }
}

/// File name (under `charts/careline/crds/`) and YAML of each CustomResourceDefinition.
pub fn crds_yaml() -> Vec<(&'static str, String)> {
    let header = "# Generated from services/operator/src/crd.rs: do not edit. Regenerate with\n\
                  #   CARELINE_UPDATE_CRDS=1 cargo nextest run -p careline-operator crd_yaml\n";
    [
        ("tenants.careline.io.yaml", Tenant::crd()),
        ("contactqueues.careline.io.yaml", ContactQueue::crd()),
    ]
    .into_iter()
    .map(|(file, crd)| {
        let yaml = serde_yaml_ng::to_string(&crd).expect("a CRD always serializes to YAML");
        (file, format!("{header}{yaml}"))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_queue_spec_reads_a_queue_of_a_tenant_file_plus_its_tenant() {
        let spec: ContactQueueSpec = serde_yaml_ng::from_str(
            "tenant: acme\nid: billing\nname: Billing\nskills:\n  - { skill: billing, min_proficiency: 4 }\n",
        )
        .unwrap();
        assert_eq!(spec.tenant, "acme");
        assert_eq!(spec.queue.id, "billing");
        assert_eq!(spec.queue.service_level_secs, 30, "the domain's default");
    }

    #[test]
    fn crd_schemas_let_the_api_server_reject_unknown_fields() {
        // serde cannot deny unknown fields next to `#[serde(flatten)]`, so a misspelt
        // field must be stopped by the API server: no schema may preserve unknown fields.
        for (file, yaml) in crds_yaml() {
            assert!(
                !yaml.contains("x-kubernetes-preserve-unknown-fields"),
                "{file}"
            );
        }
    }

    #[test]
    fn tenant_crd_is_cluster_scoped_and_allows_lowercase_weekdays() {
        let crd = serde_json::to_value(Tenant::crd()).unwrap();
        assert_eq!(crd["spec"]["scope"], "Cluster");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let days =
            &schema["properties"]["spec"]["properties"]["hours"]["items"]["properties"]["days"];
        let allowed = days["items"]["enum"].as_array().unwrap();
        assert!(allowed.contains(&"mon".into()), "{days}");
    }

    #[test]
    fn contact_queue_crd_keeps_a_queue_in_its_tenant() {
        let crd = serde_json::to_value(ContactQueue::crd()).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let rules = schema["x-kubernetes-validations"]
            .as_array()
            .expect("CEL rules");
        assert!(
            rules
                .iter()
                .any(|r| r["rule"] == "self.spec.tenant == oldSelf.spec.tenant"),
            "{rules:?}"
        );
    }
}
