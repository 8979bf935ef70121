//! The Prometheus endpoint over real HTTP.

use careline_kit::grpc::ServingStatus;
use careline_kit::metrics::{prometheus_handle, serve_metrics};
use careline_kit::{GrpcServer, Shutdown, Tls};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{DEADLINE, Running};

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    http_exchange(TcpStream::connect(addr).await.expect("connect"), path).await
}

/// Sends `GET path` on `stream` and reads the whole response.
pub async fn http_exchange(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    path: &str,
) -> String {
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    response
}

#[tokio::test]
async fn metrics_endpoint_exposes_recorded_counters_and_health() {
    let first = prometheus_handle().expect("recorder installs");
    let second = prometheus_handle().expect("second install is a no-op");
    metrics::counter!("careline_kit_test_requests_total", "outcome" => "ok").increment(3);
    assert!(second.render().contains("careline_kit_test_requests_total"));
    drop(first);

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let served = tokio::spawn(serve_metrics(listener, Tls::default(), shutdown.wait()));

    let metrics = http_get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    assert!(
        metrics.contains(r#"careline_kit_test_requests_total{outcome="ok"} 3"#),
        "{metrics}"
    );
    let health = http_get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    shutdown.trigger();
    tokio::time::timeout(DEADLINE, served)
        .await
        .expect("metrics server stops")
        .expect("task")
        .expect("clean stop");
}

#[tokio::test]
async fn readyz_follows_the_overall_health_of_the_grpc_servers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let served = tokio::spawn(serve_metrics(listener, Tls::default(), shutdown.wait()));
    let readyz = || async { http_get(addr, "/readyz").await };

    // No gRPC server yet: a pod still starting is not ready.
    assert!(readyz().await.starts_with("HTTP/1.1 503"));
    let server = GrpcServer::new();
    let health = server.health();
    let running = Running::start(server).await;
    careline_testkit::assert_eventually!(
        readyz().await.starts_with("HTTP/1.1 200"),
        "ready once the server serves"
    );
    health.set_all(ServingStatus::NotServing).await;
    assert!(readyz().await.starts_with("HTTP/1.1 503"));
    health.set_all(ServingStatus::Serving).await;
    assert!(readyz().await.starts_with("HTTP/1.1 200"));
    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
    assert!(readyz().await.starts_with("HTTP/1.1 503"));

    shutdown.trigger();
    served.await.unwrap().unwrap();
}
