//! Which tenants need background work soon: raised by this replica's own
//! scripts (a change may have set a timer or appended events) and by the
//! timer loop (settings lost), taken by the worker's tasks. Background work
//! thus visits a busy tenant at once and an idle one only on the slow sweep,
//! and never needs a command that spans tenants (one Redis Cluster slot each).

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::sync::Notify;

/// A set of tenants waiting for one kind of work, with a wake-up.
#[derive(Debug, Default)]
pub struct TenantSignal {
    tenants: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl TenantSignal {
    /// Marks `tenant` and wakes the task waiting on this signal.
    pub fn raise(&self, tenant: &str) {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if !tenants.contains(tenant) {
            tenants.insert(tenant.to_owned());
        }
        drop(tenants);
        self.wake.notify_one();
    }

    /// The marked tenants, clearing the set.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.tenants.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Resolves once a tenant was raised since the last wake-up.
    pub async fn raised(&self) {
        self.wake.notified().await;
    }
}

/// The signals a store's scripts raise for its replica's worker.
#[derive(Debug, Default)]
pub struct Activity {
    /// Tenants whose timers may have changed: checked at the next tick.
    pub timers: TenantSignal,
    /// Tenants whose outbox may have new events: relayed at once.
    pub outbox: TenantSignal,
}

impl Activity {
    /// A script ran for `tenant`.
    pub fn touched(&self, tenant: &str) {
        self.timers.raise(tenant);
        self.outbox.raise(tenant);
    }
}
