//! What every service does on NATS before it serves: the event stream, the
//! tenant bucket and the live tenant directory, retried for a while.
//!
//! A NATS cluster that has just formed (or is electing a stream leader) can
//! refuse the first requests, and replicas start together with it: start-up
//! retries for [`NATS_SETUP_DEADLINE`] rather than exit. A replica count the
//! cluster can never hold fails at once.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{BusError, StreamSettings, TenantDirectory, TenantStore};

/// How long start-up retries setting up NATS before giving up.
pub const NATS_SETUP_DEADLINE: Duration = Duration::from_secs(20);
/// Pause between two NATS set-up attempts.
pub const NATS_SETUP_RETRY: Duration = Duration::from_millis(500);

/// Creates (or updates) the event stream on `replicas` servers, opens the
/// tenant bucket and loads the tenants, watching them until `shutdown`.
pub async fn start_tenants(
    js: &jetstream::Context,
    replicas: Option<usize>,
    shutdown: &CancellationToken,
) -> Result<TenantDirectory, BusError> {
    let streams = StreamSettings {
        replicas,
        ..StreamSettings::default()
    };
    retrying(shutdown, || async {
        crate::ensure_streams_with(js, &streams).await?;
        let store = TenantStore::open(js, replicas).await?;
        TenantDirectory::start(&store, shutdown).await
    })
    .await
}

/// Runs `attempt` until it succeeds; failures are retried every
/// [`NATS_SETUP_RETRY`] until [`NATS_SETUP_DEADLINE`] or `shutdown`, except
/// a replica count that can never work.
pub async fn retrying<T, F, Fut>(
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Result<T, BusError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BusError>>,
{
    let deadline = Instant::now() + NATS_SETUP_DEADLINE;
    loop {
        match attempt().await {
            Ok(ready) => return Ok(ready),
            Err(error @ BusError::Replicas { .. }) => return Err(error),
            Err(error) if Instant::now() < deadline && !shutdown.is_cancelled() => {
                tracing::warn!(%error, "setting up NATS failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(error),
                    _ = tokio::time::sleep(NATS_SETUP_RETRY) => {}
                }
            }
            Err(error) => return Err(error),
        }
    }
}
