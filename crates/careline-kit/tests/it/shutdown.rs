//! Graceful shutdown: in-flight calls drain, then the grace period ends them.

use std::sync::Arc;
use std::time::Duration;

use careline_kit::GrpcServer;
use tokio::sync::{Notify, oneshot};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as PbStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{DEADLINE, Probe, Running};

#[tokio::test]
async fn in_flight_unary_completes_after_shutdown_then_serve_returns() {
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
    let release = Arc::new(Notify::new());
    let slow = {
        let release = release.clone();
        Probe::new(move |_| {
            let started = started_tx.lock().unwrap().take();
            let release = release.clone();
            async move {
                if let Some(started) = started {
                    let _ = started.send(());
                }
                release.notified().await;
                Ok(tonic::Response::new(()))
            }
        })
    };
    let running = Running::start(GrpcServer::new().add_service(slow)).await;
    let call = tokio::spawn(Probe::call(running.channel().await, &[]));
    tokio::time::timeout(DEADLINE, started_rx)
        .await
        .expect("handler starts")
        .expect("handler signals");

    running.shutdown.trigger();
    // Draining: new connections are refused once the listener is dropped.
    let refused_by = tokio::time::Instant::now() + DEADLINE;
    while tokio::net::TcpStream::connect(running.addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < refused_by,
            "listener still accepting"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        !running.served.is_finished(),
        "serve returned with a call in flight"
    );

    release.notify_one();
    tokio::time::timeout(DEADLINE, call)
        .await
        .expect("call finishes")
        .expect("call task")
        .expect("in-flight call succeeds despite shutdown");
    running.stopped().await.expect("clean stop after drain");
}

#[tokio::test]
async fn open_watch_stream_sees_not_serving_on_shutdown_and_drains_when_closed() {
    let running = Running::start(GrpcServer::new()).await;
    let mut client = HealthClient::new(running.channel().await);
    let mut watch = client
        .watch(HealthCheckRequest::default())
        .await
        .expect("watch opens")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("stream")
        .expect("first status");
    assert_eq!(first.status(), PbStatus::Serving);

    running.shutdown.trigger();
    let next = tokio::time::timeout(DEADLINE, watch.message())
        .await
        .expect("status update before deadline")
        .expect("stream still open while draining")
        .expect("an update");
    assert_eq!(next.status(), PbStatus::NotServing);

    drop(watch);
    drop(client);
    running.stopped().await.expect("clean stop after drain");
}

#[tokio::test]
async fn calls_still_running_after_the_grace_period_are_closed() {
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
    let stuck = Probe::new(move |_| {
        let started = started_tx.lock().unwrap().take();
        async move {
            if let Some(started) = started {
                let _ = started.send(());
            }
            std::future::pending().await
        }
    });
    let server = GrpcServer::new()
        .add_service(stuck)
        .shutdown_grace(Duration::from_millis(200));
    let running = Running::start(server).await;
    let call = tokio::spawn(Probe::call(running.channel().await, &[]));
    tokio::time::timeout(DEADLINE, started_rx)
        .await
        .expect("handler starts")
        .expect("handler signals");

    running.shutdown.trigger();
    running
        .stopped()
        .await
        .expect("stop after the grace period");
    let outcome = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("client notices the closed connection")
        .expect("call task");
    assert!(outcome.is_err(), "the cut-off call fails on the client");
}
