//! Failures of background work, made visible without flooding the log.
//!
//! Every failure counts in [`WORKER_FAILURES_METRIC`] (labels `task`, `tenant`);
//! the first of a streak logs at warn with the tenant id, repeats log at debug,
//! and the first success after a streak logs at info. A tenant whose timers fail
//! every tick thus shows one warning and a rising counter, not 20 lines a second.

use std::collections::HashSet;
use std::fmt::Display;

/// Counter of failed background steps, by `task` and `tenant`.
pub const WORKER_FAILURES_METRIC: &str = "careline_routing_worker_failures_total";

/// The `tenant` label of a step done for every tenant at once (the timer check).
pub const ALL_TENANTS: &str = "*";

/// A kind of background step, as the `task` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerTask {
    /// Applying a tenant's configuration to its routing state.
    TenantSync,
    /// The one read per tick that finds tenants with due timers.
    TimerCheck,
    /// Running a tenant's due timers.
    Timers,
}

impl WorkerTask {
    /// The `task` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerTask::TenantSync => "tenant_sync",
            WorkerTask::TimerCheck => "timer_check",
            WorkerTask::Timers => "timers",
        }
    }
}

/// The failure streaks currently open, per task and tenant.
#[derive(Debug, Default)]
pub struct FailureStreaks {
    failing: HashSet<(WorkerTask, String)>,
}

impl FailureStreaks {
    /// Counts a failure; logs at warn if it starts a streak.
    pub fn failed(&mut self, task: WorkerTask, tenant: &str, error: &dyn Display) {
        metrics::counter!(
            WORKER_FAILURES_METRIC,
            "task" => task.as_str(),
            "tenant" => tenant.to_owned()
        )
        .increment(1);
        if self.failing.insert((task, tenant.to_owned())) {
            tracing::warn!(
                task = task.as_str(),
                %tenant,
                %error,
                "background work failed; retrying (repeats log at debug until it recovers)"
            );
        } else {
            tracing::debug!(task = task.as_str(), %tenant, %error, "background work failed again");
        }
    }

    /// Ends the streak of `task` for `tenant`, if one was open.
    pub fn succeeded(&mut self, task: WorkerTask, tenant: &str) {
        if !self.failing.is_empty() && self.failing.remove(&(task, tenant.to_owned())) {
            tracing::info!(task = task.as_str(), %tenant, "background work recovered");
        }
    }

    /// Forgets the streaks of tenants that no longer exist.
    pub fn retain_tenants(&mut self, exists: impl Fn(&str) -> bool) {
        self.failing
            .retain(|(_, tenant)| tenant == ALL_TENANTS || exists(tenant));
    }
}
