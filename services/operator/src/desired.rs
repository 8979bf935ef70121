//! The tenant configuration a Tenant and its ContactQueues describe, and where each of
//! its problems lives in those resources. Every rule is the domain's
//! ([`TenantConfig::validate`]); this module only merges resources into one
//! configuration and maps the domain's field paths (`queues[1].skills[0].skill`) back to
//! the resource and field a user edits (`ContactQueue acme-billing: spec.skills[0].skill`).

use careline_domain::tenant::ApiKey;
use careline_domain::{ConfigError, TenantConfig};
use kube::ResourceExt;

use crate::crd::{ContactQueue, Tenant};

/// The configuration to store for `tenant`, with its `queues` (already filtered to those
/// naming it) and the digests of its API keys. Queues are ordered by queue id, then by
/// resource name, so every replica derives the same value from the same resources.
pub fn tenant_config(tenant: &Tenant, queues: &[ContactQueue], api_keys: Vec<ApiKey>) -> Desired {
    let mut queues: Vec<&ContactQueue> = queues.iter().collect();
    queues.sort_by(|a, b| {
        (a.spec.queue.id.as_str(), a.name_any()).cmp(&(b.spec.queue.id.as_str(), b.name_any()))
    });
    let spec = &tenant.spec;
    let config = TenantConfig {
        id: tenant.name_any(),
        name: spec.name.clone(),
        time_zone: spec.time_zone.clone(),
        languages: spec.languages.clone(),
        hours: spec.hours.clone(),
        holidays: spec.holidays.clone(),
        after_hours_message: spec.after_hours_message.clone(),
        contact_email: spec.contact_email.clone(),
        portal_url: spec.portal_url.clone(),
        inbound_email_addresses: spec.inbound_email_addresses.clone(),
        email: spec.email.clone(),
        chat: spec.chat.clone(),
        api_keys,
        routing: spec.routing.clone(),
        queues: queues.iter().map(|q| q.spec.queue.clone()).collect(),
        agents: spec.agents.clone(),
        limits: spec.limits,
        surveys: spec.surveys.clone(),
        outreach: spec.outreach.clone(),
        quality: spec.quality.clone(),
    };
    Desired {
        config,
        queue_names: queues.iter().map(|q| q.name_any()).collect(),
    }
}

/// A merged configuration and the ContactQueue each of its queues came from.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The configuration, not yet validated.
    pub config: TenantConfig,
    /// `queue_names[i]` is the name of the ContactQueue behind `config.queues[i]`.
    pub queue_names: Vec<String>,
}

/// Which resource a problem belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The Tenant itself.
    Tenant,
    /// The ContactQueue with this name.
    Queue(String),
}

/// One problem of a configuration, placed in the resource a user must edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The resource holding the field.
    pub owner: Owner,
    /// The field within that resource, e.g. `spec.time_zone`.
    pub field: String,
    /// The domain's message: what is wrong and what is allowed.
    pub message: String,
}

impl Located {
    /// `Invalid` + the field's first part in CamelCase (`spec.time_zone` -> `InvalidTimeZone`):
    /// a condition reason, which must be one word.
    pub fn reason(&self) -> String {
        let first = self
            .field
            .trim_start_matches("spec.")
            .trim_start_matches("metadata.")
            .split(['.', '['])
            .next()
            .unwrap_or_default();
        let camel: String = first
            .split(['_', '-'])
            .filter(|part| !part.is_empty())
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |c| {
                    c.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        format!("Invalid{camel}")
    }
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Owner::Queue(name) = &self.owner {
            write!(f, "ContactQueue {name}: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl Desired {
    /// Each problem of `error` placed in its resource and field.
    pub fn locate(&self, error: &ConfigError) -> Vec<Located> {
        error
            .problems
            .iter()
            .map(|problem| {
                let (owner, field) = self.place(&problem.field);
                Located {
                    owner,
                    field,
                    message: problem.message.clone(),
                }
            })
            .collect()
    }

    fn place(&self, field: &str) -> (Owner, String) {
        if field == "id" {
            return (Owner::Tenant, "metadata.name".into());
        }
        if field == "queues" {
            return (Owner::Tenant, "contactQueues".into());
        }
        // `api_keys[i].sha256` cannot be wrong (the operator computes it); the id can.
        let Some(rest) = field.strip_prefix("queues[") else {
            return (Owner::Tenant, format!("spec.{field}"));
        };
        let queue = rest
            .split_once(']')
            .and_then(|(index, tail)| Some((index.parse::<usize>().ok()?, tail)))
            .and_then(|(index, tail)| Some((self.queue_names.get(index)?, tail)));
        match queue {
            Some((name, tail)) => (Owner::Queue(name.clone()), format!("spec{tail}")),
            None => (Owner::Tenant, format!("spec.{field}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use careline_domain::tenant::QueueConfig;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::crd::{ContactQueueSpec, TenantSpec};

    fn tenant(time_zone: &str) -> Tenant {
        let spec: TenantSpec = serde_yaml_ng::from_str(&format!(
            "name: Acme\ntime_zone: {time_zone}\nlanguages: [en]\ncontact_email: help@acme.example\n"
        ))
        .unwrap();
        Tenant::new("acme", spec)
    }

    fn queue(name: &str, id: &str, move_to: Option<&str>) -> ContactQueue {
        let queue: QueueConfig = serde_yaml_ng::from_str(&match move_to {
            Some(to) => format!("id: {id}\noverflow:\n  - {{ after_secs: 60, move_to: {to} }}\n"),
            None => format!("id: {id}\n"),
        })
        .unwrap();
        ContactQueue {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: ContactQueueSpec {
                tenant: "acme".into(),
                queue,
            },
            status: None,
        }
    }

    #[test]
    fn queues_are_merged_in_queue_id_order_and_the_tenant_name_is_the_id() {
        let desired = tenant_config(
            &tenant("UTC"),
            &[queue("q-z", "zeta", None), queue("q-a", "alpha", None)],
            Vec::new(),
        );
        assert_eq!(desired.config.id, "acme");
        let ids: Vec<_> = desired
            .config
            .queues
            .iter()
            .map(|q| q.id.as_str())
            .collect();
        assert_eq!(ids, ["alpha", "zeta"]);
        assert_eq!(desired.queue_names, ["q-a", "q-z"]);
        desired.config.validate().unwrap();
    }

    #[test]
    fn problems_are_placed_in_the_resource_and_field_a_user_edits() {
        let desired = tenant_config(
            &tenant("Mars/Olympus"),
            &[queue("acme-general", "general", Some("nowhere"))],
            Vec::new(),
        );
        let error = desired.config.validate().unwrap_err();
        let located = desired.locate(&error);
        let summary: Vec<_> = located
            .iter()
            .map(|l| (l.owner.clone(), l.field.as_str(), l.reason()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    Owner::Tenant,
                    "spec.time_zone",
                    "InvalidTimeZone".to_string()
                ),
                (
                    Owner::Queue("acme-general".into()),
                    "spec.overflow[0].move_to",
                    "InvalidOverflow".to_string()
                ),
            ]
        );
        assert!(
            located[1].to_string().starts_with(
                "ContactQueue acme-general: spec.overflow[0].move_to: queue \"nowhere\""
            )
        );
    }

    #[test]
    fn a_tenant_without_queues_says_to_create_one() {
        let desired = tenant_config(&tenant("UTC"), &[], Vec::new());
        let located = desired.locate(&desired.config.validate().unwrap_err());
        assert_eq!(located.len(), 1);
        assert_eq!(located[0].owner, Owner::Tenant);
        assert_eq!(located[0].field, "contactQueues");
        assert_eq!(located[0].reason(), "InvalidContactQueues");
    }
}
