//! The server limits every GrpcServer applies: request timeout, streams per connection and
//! HTTP/2 keepalive.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use careline_kit::config::ENV_REQUEST_TIMEOUT_SECS;
use careline_kit::{GrpcServer, ServerLimits};
use tokio::sync::Semaphore;
use tonic::Code;

use crate::support::{DEADLINE, Probe, Running};

/// How long the stream-limit test watches for a call beyond the limit starting.
const OBSERVE: Duration = Duration::from_millis(500);
/// How often the test looks at the number of running calls.
const POLL: Duration = Duration::from_millis(5);

#[tokio::test]
async fn a_call_over_the_request_timeout_is_answered_deadline_exceeded_naming_the_limit() {
    let hung = Probe::new(|_| std::future::pending());
    let limits = ServerLimits {
        request_timeout_secs: 1,
        ..ServerLimits::default()
    };
    let running = Running::start(GrpcServer::new().add_service(hung).limits(limits)).await;
    let status = tokio::time::timeout(DEADLINE, Probe::call(running.channel().await, &[]))
        .await
        .expect("answered before the test deadline")
        .expect_err("a hung call is refused");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("request timeout of 1 s")
            && status.message().contains(ENV_REQUEST_TIMEOUT_SECS),
        "names the limit and its setting: {}",
        status.message()
    );
    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
}

#[tokio::test]
async fn a_connection_runs_no_more_concurrent_calls_than_its_stream_limit() {
    let gate = Arc::new(Semaphore::new(0));
    let (running_now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let probe = Probe::new({
        let (gate, running_now, most) = (gate.clone(), running_now.clone(), most.clone());
        move |_| {
            let (gate, running_now, most) = (gate.clone(), running_now.clone(), most.clone());
            async move {
                let now = running_now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                gate.acquire().await.expect("gate open").forget();
                running_now.fetch_sub(1, Ordering::SeqCst);
                Ok(tonic::Response::new(()))
            }
        }
    });
    let limits = ServerLimits {
        max_streams_per_connection: 2,
        ..ServerLimits::default()
    };
    let running = Running::start(GrpcServer::new().add_service(probe).limits(limits)).await;
    let channel = running.channel().await;
    let calls: Vec<_> = (0..3)
        .map(|_| tokio::spawn(Probe::call(channel.clone(), &[])))
        .collect();
    tokio::time::timeout(DEADLINE, until_running(&running_now, 2))
        .await
        .expect("two calls run");
    let third_started = tokio::time::timeout(OBSERVE, until_running(&running_now, 3)).await;
    assert!(
        third_started.is_err(),
        "the third call does not run beside the first two"
    );
    gate.add_permits(3);
    let mut answered = 0;
    for call in calls {
        let result = tokio::time::timeout(DEADLINE, call)
            .await
            .expect("answered")
            .expect("no panic");
        // A client that opens the stream before it has the server's limit is refused
        // (REFUSED_STREAM: UNAVAILABLE, safe to retry); one that knows it waits.
        match result {
            Ok(_) => answered += 1,
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        }
    }
    assert!(answered >= 2, "the calls within the limit are answered");
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "never more than the limit at once"
    );
    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
}

/// Polls until `count` calls run at once.
async fn until_running(running_now: &AtomicUsize, count: usize) {
    while running_now.load(Ordering::SeqCst) < count {
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn a_connection_that_stops_answering_keepalive_pings_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const PING: u8 = 0x6;
    const ACK: u8 = 0x1;
    let limits = ServerLimits {
        keepalive_secs: 1,
        ..ServerLimits::default()
    };
    let running = Running::start(GrpcServer::new().limits(limits)).await;
    // An HTTP/2 client that says hello and then never answers anything.
    let mut peer = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    peer.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut pinged = false;
    let closed = tokio::time::timeout(DEADLINE, async {
        loop {
            let mut header = [0u8; 9];
            if peer.read_exact(&mut header).await.is_err() {
                return;
            }
            let length =
                usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            let mut payload = vec![0u8; length];
            if peer.read_exact(&mut payload).await.is_err() {
                return;
            }
            pinged |= header[3] == PING && header[4] & ACK == 0;
        }
    })
    .await;
    assert!(closed.is_ok(), "the silent connection is closed");
    assert!(pinged, "the server pinged before closing it");
    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
}
