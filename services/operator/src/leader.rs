//! Leader election on a `coordination.k8s.io` Lease, so that of several replicas exactly
//! one runs the controllers at a time (the others wait, ready to take over). Reconciles
//! are idempotent anyway; the lease closes the one race idempotency leaves open: a replica
//! with a stale view writing back a tenant another replica just removed.
//!
//! The protocol is client-go's: the holder renews `renewTime` every [`RENEW_INTERVAL`];
//! another replica takes the lease once it has seen the same holder record unchanged for
//! the lease's duration, measured on its own monotonic clock (so clock skew between nodes
//! does not matter). Every write carries the `resourceVersion` it read, so of two replicas
//! racing for the lease the API server lets exactly one win.

use std::future::Future;
use std::time::Duration;

use careline_kit::Shutdown;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;

use crate::{Error, metrics};

/// Name of the Lease, in the operator's namespace.
pub const LEASE_NAME: &str = "careline-operator";
/// How long a holder keeps the lease without renewing it.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(5);
/// A holder that could not renew for this long stops leading, before its lease can expire
/// for the others (shorter than [`LEASE_DURATION`]).
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often a replica that does not lead tries to acquire the lease.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// The holder record of a lease, as last read.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
}

/// One replica's handle on the Lease.
pub struct LeaseLock {
    api: Api<Lease>,
    identity: String,
    /// The record last read and when (locally) it was first seen unchanged.
    observed: Option<(Record, Instant)>,
}

impl LeaseLock {
    /// The lock on [`LEASE_NAME`] in `namespace`, for the replica named `identity`.
    pub fn new(client: kube::Client, namespace: &str, identity: String) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            identity,
            observed: None,
        }
    }

    /// One attempt to acquire or renew; true if this replica holds the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        let now = Instant::now();
        let Some(lease) = self.api.get_opt(LEASE_NAME).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.taken(&LeaseSpec::default())),
            };
            return conflict_is_false(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let record = Record {
            holder: spec.holder_identity.clone(),
            renew_time: spec.renew_time.clone(),
        };
        let seen_since = match &self.observed {
            Some((previous, since)) if *previous == record => *since,
            _ => now,
        };
        self.observed = Some((record, seen_since));
        let mine = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(LEASE_DURATION, Duration::from_secs);
        if !mine && spec.holder_identity.is_some() && now.duration_since(seen_since) < duration {
            return Ok(false);
        }
        let mut next = lease;
        next.spec = Some(if mine {
            LeaseSpec {
                renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
                ..spec
            }
        } else {
            self.taken(&spec)
        });
        conflict_is_false(
            self.api
                .replace(LEASE_NAME, &PostParams::default(), &next)
                .await,
        )
    }

    /// Gives the lease up (on shutdown) so another replica takes over without waiting.
    pub async fn release(&mut self) -> Result<(), Error> {
        let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        conflict_is_false(
            self.api
                .replace(LEASE_NAME, &PostParams::default(), &lease)
                .await,
        )?;
        Ok(())
    }

    /// `previous` taken over by this replica.
    fn taken(&self, previous: &LeaseSpec) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(
                previous.lease_transitions.unwrap_or(0)
                    + i32::from(previous.holder_identity.is_some()),
            ),
            ..LeaseSpec::default()
        }
    }
}

/// A write that lost a race (409 Conflict, or 409 AlreadyExists on create) means another
/// replica holds the lease.
fn conflict_is_false(result: Result<Lease, kube::Error>) -> Result<bool, Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Runs `work` whenever this replica holds the lease, until `shutdown`; `work` gets a
/// signal that fires when leadership is lost (or on shutdown) and must then return.
pub async fn run_while_leader<F, Fut>(mut lock: LeaseLock, shutdown: Shutdown, work: F)
where
    F: Fn(Shutdown) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        // Follower: try until the lease is ours (a hanging API server must not delay shutdown).
        loop {
            let attempt = tokio::select! {
                _ = shutdown.wait() => return,
                attempt = lock.try_acquire_or_renew() => attempt,
            };
            match attempt {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot read the leader lease"),
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(RETRY_INTERVAL) => {}
            }
        }
        tracing::info!(identity = %lock.identity, "leading: controllers start");
        metrics::leading(true);
        let term = shutdown.child();
        let task = tokio::spawn(work(term.clone()));
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(RENEW_INTERVAL) => {}
            }
            match lock.try_acquire_or_renew().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {
                    tracing::warn!("another replica took the leader lease");
                    break;
                }
                Err(error) if renewed.elapsed() >= RENEW_DEADLINE => {
                    tracing::warn!(%error, "could not renew the leader lease in time");
                    break;
                }
                Err(error) => tracing::warn!(%error, "renewing the leader lease failed; retrying"),
            }
        }
        term.trigger();
        if let Err(error) = task.await {
            tracing::error!(%error, "controllers panicked");
        }
        metrics::leading(false);
        if shutdown.is_triggered() {
            if let Err(error) = lock.release().await {
                tracing::warn!(%error, "could not release the leader lease");
            }
            return;
        }
    }
}
