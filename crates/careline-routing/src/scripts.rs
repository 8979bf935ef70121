//! The Lua scripts, one per atomic routing operation, each preceded by the
//! shared prelude `lua/lib.lua`. A script's body runs as a function so that
//! whatever it returns, the events it emitted are appended to the outbox
//! after it (`flush_events`).
//!
//! redis-rs [`Script`] runs them by SHA and reloads a script when Redis
//! answers NOSCRIPT (after a restart or failover empties the script cache).

use redis::Script;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/lib.lua"),
            "\nlocal function body()\n",
            include_str!($file),
            "\nend\nlocal reply = body()\nflush_events()\nreturn reply\n"
        ))
    };
}

/// Every routing script, compiled once per store.
pub(crate) struct Scripts {
    pub create_interaction: Script,
    pub accept_offer: Script,
    pub reject_offer: Script,
    pub transfer: Script,
    pub set_pending: Script,
    pub resolve: Script,
    pub abandon: Script,
    pub run_timers: Script,
    pub agent_login: Script,
    pub agent_refresh: Script,
    pub agent_set_state: Script,
    /// These stand alone, without the prelude: see the scripts.
    pub agent_heartbeat: Script,
    pub timer_check: Script,
    pub rate_limit: Script,
    pub purge_tenant: Script,
    pub relayed_init: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            create_interaction: script!("lua/create_interaction.lua"),
            accept_offer: script!("lua/accept_offer.lua"),
            reject_offer: script!("lua/reject_offer.lua"),
            transfer: script!("lua/transfer.lua"),
            set_pending: script!("lua/set_pending.lua"),
            resolve: script!("lua/resolve.lua"),
            abandon: script!("lua/abandon.lua"),
            run_timers: script!("lua/run_timers.lua"),
            agent_login: script!("lua/agent_login.lua"),
            agent_refresh: script!("lua/agent_refresh.lua"),
            agent_set_state: script!("lua/agent_set_state.lua"),
            agent_heartbeat: Script::new(include_str!("lua/agent_heartbeat.lua")),
            timer_check: Script::new(include_str!("lua/timer_check.lua")),
            rate_limit: Script::new(include_str!("lua/rate_limit.lua")),
            purge_tenant: Script::new(include_str!("lua/purge_tenant.lua")),
            relayed_init: Script::new(include_str!("lua/relayed_init.lua")),
        }
    }
}
