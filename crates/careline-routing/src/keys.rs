//! Redis key names. Every key of a tenant starts with `cl:{<tenant>}:`; the
//! hash tag keeps a tenant in one Redis Cluster slot so one script can touch
//! all of its keys. The scripts derive the rest of the names from the prefix
//! (see `lua/lib.lua`); this module names the ones Rust reads directly.

use careline_domain::Channel;

/// The key prefix of a tenant (passed to every script as KEYS[1]).
pub fn prefix(tenant: &str) -> String {
    format!("cl:{{{tenant}}}:")
}

pub(crate) fn interaction(tenant: &str, id: &str) -> String {
    format!("{}ix:{id}", prefix(tenant))
}

pub(crate) fn agent(tenant: &str, id: &str) -> String {
    format!("{}agent:{id}", prefix(tenant))
}

pub(crate) fn queue(tenant: &str, target: &str, channel: Channel, lang: &str) -> String {
    format!("{}q:{target}:{}:{lang}", prefix(tenant), channel.as_str())
}

pub(crate) fn tenant_key(tenant: &str, name: &str) -> String {
    format!("{}{name}", prefix(tenant))
}
