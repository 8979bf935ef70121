//! The routing operations as one Redis Functions library: `lua/lib.lua`
//! (constants, per-call state and helpers) followed by one function per
//! operation, whose body is that operation's `lua/<operation>.lua`. Redis
//! compiles the library once per primary (FUNCTION LOAD, kept in its data
//! and copied to its replicas), so a call runs only its own work; with
//! scripts, every call defined the whole prelude again.
//!
//! The library and its functions are named after a digest of their code, so
//! releases with different code never call each other's functions. A primary
//! without the library (a new or emptied one) answers "Function not found";
//! the store loads it then and calls again (`RoutingStore::call_routing`).
//!
//! A few standalone scripts without the library stay EVAL scripts, which
//! redis-rs [`Script`] reloads when Redis answers NOSCRIPT.

use redis::{Cmd, Script};

use crate::keys;

/// The routing operations: each a function of the library.
const OPERATIONS: [(&str, &str); 11] = [
    (
        "create_interaction",
        include_str!("lua/create_interaction.lua"),
    ),
    ("accept_offer", include_str!("lua/accept_offer.lua")),
    ("reject_offer", include_str!("lua/reject_offer.lua")),
    ("transfer", include_str!("lua/transfer.lua")),
    ("set_pending", include_str!("lua/set_pending.lua")),
    ("resolve", include_str!("lua/resolve.lua")),
    ("abandon", include_str!("lua/abandon.lua")),
    ("run_timers", include_str!("lua/run_timers.lua")),
    ("agent_login", include_str!("lua/agent_login.lua")),
    ("agent_refresh", include_str!("lua/agent_refresh.lua")),
    ("agent_set_state", include_str!("lua/agent_set_state.lua")),
];

/// Characters of the code's digest in the library's and functions' names.
const DIGEST_CHARS: usize = 12;

/// One function of the routing library.
pub(crate) struct Routine {
    name: String,
}

impl Routine {
    /// The FCALL of this function for `tenant` (its key prefix is the one
    /// declared key), with the current traceparent and then `args`.
    pub fn call(&self, tenant: &str, args: &[&[u8]]) -> Cmd {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(&self.name)
            .arg(1)
            .arg(keys::prefix(tenant))
            .arg(careline_bus::current_traceparent());
        for arg in args {
            cmd.arg(*arg);
        }
        cmd
    }
}

/// Every routing function and standalone script, built once per store.
pub(crate) struct Scripts {
    /// The library's code, for FUNCTION LOAD.
    pub library: String,
    pub create_interaction: Routine,
    pub accept_offer: Routine,
    pub reject_offer: Routine,
    pub transfer: Routine,
    pub set_pending: Routine,
    pub resolve: Routine,
    pub abandon: Routine,
    pub run_timers: Routine,
    pub agent_login: Routine,
    pub agent_refresh: Routine,
    pub agent_set_state: Routine,
    /// These stand alone, without the library: see the scripts.
    pub agent_heartbeat: Script,
    pub timer_check: Script,
    pub rate_limit: Script,
    pub purge_tenant: Script,
    pub relayed_init: Script,
}

impl Scripts {
    pub fn new() -> Self {
        let mut code = String::from(include_str!("lua/lib.lua"));
        for (operation, body) in OPERATIONS {
            code.push_str(&format!(
                "\nlocal function op_{operation}()\n{body}\nend\n\
                 redis.register_function('cl_@_{operation}', function(keys, args)\n  \
                 return run(keys, args, op_{operation})\nend)\n"
            ));
        }
        let hash = Script::new(&code).get_hash().to_owned();
        let digest = &hash[..DIGEST_CHARS];
        let library = format!(
            "#!lua name=careline_routing_{digest}\n{}",
            code.replace("'cl_@_", &format!("'cl_{digest}_"))
        );
        let routine = |operation: &str| Routine {
            name: format!("cl_{digest}_{operation}"),
        };
        Self {
            library,
            create_interaction: routine("create_interaction"),
            accept_offer: routine("accept_offer"),
            reject_offer: routine("reject_offer"),
            transfer: routine("transfer"),
            set_pending: routine("set_pending"),
            resolve: routine("resolve"),
            abandon: routine("abandon"),
            run_timers: routine("run_timers"),
            agent_login: routine("agent_login"),
            agent_refresh: routine("agent_refresh"),
            agent_set_state: routine("agent_set_state"),
            agent_heartbeat: Script::new(include_str!("lua/agent_heartbeat.lua")),
            timer_check: Script::new(include_str!("lua/timer_check.lua")),
            rate_limit: Script::new(include_str!("lua/rate_limit.lua")),
            purge_tenant: Script::new(include_str!("lua/purge_tenant.lua")),
            relayed_init: Script::new(include_str!("lua/relayed_init.lua")),
        }
    }
}

/// Whether Redis answered that a function of the library is not loaded.
pub(crate) fn library_missing(error: &redis::RedisError) -> bool {
    error.to_string().contains("Function not found")
}
