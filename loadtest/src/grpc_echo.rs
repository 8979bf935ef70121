//! `careline-grpc-echo`: the bare tonic service `loadtest/k6/offers.js` measures the router
//! against. It answers `grpc.health.v1.Health/Check` (and serves reflection, so k6 finds the
//! method as it finds the router's), on the same tonic, tokio and TCP_NODELAY setting as the
//! Careline services but with no auth, limits or work behind the call: the difference in
//! latency is what Careline adds to a gRPC call on this machine.
//!
//!   careline-grpc-echo [ADDR]
//!
//! ADDR defaults to 127.0.0.1:50099 (it prints `listening on ADDR`).

use tokio_stream::wrappers::TcpListenerStream;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50099".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health)
        .add_service(reflection)
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
