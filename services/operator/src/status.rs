//! Writing a resource's `Ready` condition and `observedGeneration`, keeping the
//! transition time while the status stays the same and skipping the write when nothing
//! changed (so a resync causes no watch event and no reconcile loop).

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::Error;
use crate::crd::{Condition, ConfigStatus, READY};

/// The field manager of the operator's status writes (server-side apply).
pub const FIELD_MANAGER: &str = "careline-operator";
/// Longest condition message: the API server allows 32 KiB; a person reads far less.
pub const MAX_CONDITION_MESSAGE_BYTES: usize = 4096;

/// The verdict on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the resource's configuration is in the bucket.
    pub ready: bool,
    /// One CamelCase word.
    pub reason: String,
    /// What happened or what to fix.
    pub message: String,
}

impl Verdict {
    /// Ready=True.
    pub fn ready(reason: &str, message: String) -> Self {
        Verdict {
            ready: true,
            reason: reason.into(),
            message,
        }
    }

    /// Ready=False.
    pub fn not_ready(reason: impl Into<String>, message: String) -> Self {
        Verdict {
            ready: false,
            reason: reason.into(),
            message,
        }
    }
}

/// A resource with a [`ConfigStatus`].
pub trait HasStatus {
    /// Its current status, if any.
    fn config_status(&self) -> Option<&ConfigStatus>;
}

impl HasStatus for crate::crd::Tenant {
    fn config_status(&self) -> Option<&ConfigStatus> {
        self.status.as_ref()
    }
}

impl HasStatus for crate::crd::ContactQueue {
    fn config_status(&self) -> Option<&ConfigStatus> {
        self.status.as_ref()
    }
}

/// The status `object` should have after `verdict`, at time `now` (RFC 3339).
pub fn next_status<K: Resource + HasStatus>(
    object: &K,
    verdict: &Verdict,
    now: &str,
) -> ConfigStatus {
    let generation = object.meta().generation;
    let status = if verdict.ready { "True" } else { "False" };
    let previous = object.config_status().and_then(ConfigStatus::ready);
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => now.to_owned(),
    };
    ConfigStatus {
        observed_generation: generation,
        conditions: vec![Condition {
            type_: READY.into(),
            status: status.into(),
            reason: verdict.reason.clone(),
            message: truncate(&verdict.message),
            last_transition_time,
            observed_generation: generation,
        }],
    }
}

/// Writes `verdict` into `object`'s status unless it already says exactly that.
pub async fn report<K>(api: &Api<K>, object: &K, verdict: &Verdict) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + HasStatus + Clone + DeserializeOwned + std::fmt::Debug,
{
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = next_status(object, verdict, &now);
    if object.config_status() == Some(&status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_CONDITION_MESSAGE_BYTES {
        return message.to_owned();
    }
    let mut end = MAX_CONDITION_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ContactQueue, ContactQueueSpec};

    fn queue(generation: i64) -> ContactQueue {
        let spec: ContactQueueSpec =
            serde_yaml_ng::from_str("tenant: acme\nid: general\n").unwrap();
        let mut queue = ContactQueue::new("acme-general", spec);
        queue.metadata.generation = Some(generation);
        queue
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let mut queue = queue(1);
        let bad = Verdict::not_ready("InvalidSkills", "spec.skills[0].skill: empty".into());
        let first = next_status(&queue, &bad, "2026-01-01T00:00:00Z");
        assert_eq!(first.observed_generation, Some(1));
        queue.status = Some(first);
        queue.metadata.generation = Some(2);
        let still_bad = Verdict::not_ready("InvalidOverflow", "other".into());
        let second = next_status(&queue, &still_bad, "2026-01-02T00:00:00Z");
        assert_eq!(
            second.ready().unwrap().last_transition_time,
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(second.observed_generation, Some(2));
        queue.status = Some(second);
        let good = Verdict::ready("Applied", "ok".into());
        let third = next_status(&queue, &good, "2026-01-03T00:00:00Z");
        let ready = third.ready().unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.as_str()),
            ("True", "2026-01-03T00:00:00Z")
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let message = "é".repeat(MAX_CONDITION_MESSAGE_BYTES);
        let cut = truncate(&message);
        assert!(cut.len() <= MAX_CONDITION_MESSAGE_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
