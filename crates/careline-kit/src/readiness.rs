//! Readiness of a service's stores: Redis answers a PING within
//! [`HEALTH_PING_TIMEOUT`] and the NATS client is connected, checked every
//! [`HEALTH_PROBE_EVERY`]. Services report it as gRPC health (see
//! [`crate::GrpcServer::readiness`]).

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::RedisConnection;

/// How often readiness is checked.
pub const HEALTH_PROBE_EVERY: Duration = Duration::from_secs(1);
/// A Redis PING that does not answer within this long counts as down (a
/// reconnecting client would otherwise keep the probe waiting).
pub const HEALTH_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Starts probing `redis` and `nats` until `shutdown`; returns the readiness
/// (ready until a probe says otherwise) and the probing task.
pub fn spawn_probe(
    redis: RedisConnection,
    nats: async_nats::Client,
    shutdown: CancellationToken,
) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (report, ready) = watch::channel(true);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEALTH_PROBE_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let mut conn = redis.clone();
            let ping = redis::cmd("PING");
            let answer =
                tokio::time::timeout(HEALTH_PING_TIMEOUT, ping.query_async::<String>(&mut conn));
            let redis_up = matches!(answer.await, Ok(Ok(_)));
            let nats_up = nats.connection_state() == async_nats::connection::State::Connected;
            let healthy = redis_up && nats_up;
            if *report.borrow() != healthy {
                tracing::warn!(redis_up, nats_up, "readiness changed");
            }
            report.send_replace(healthy);
        }
    });
    (ready, task)
}
