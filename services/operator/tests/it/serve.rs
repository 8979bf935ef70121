//! The service around the controllers: start-up checks, gRPC health, shutdown.

use std::net::SocketAddr;

use careline_kit::{CommonConfig, MetricsAddr, Shutdown};
use careline_operator::{OperatorConfig, serve_with_client};
use careline_testkit::NatsServer;
use http::Method;
use tokio::net::TcpListener;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::api_server;
use crate::fixture::list;

fn config(nats_url: String) -> OperatorConfig {
    OperatorConfig {
        common: CommonConfig {
            nats_url,
            metrics_addr: MetricsAddr::Off,
            ..CommonConfig::default()
        },
        listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        namespace: Some("careline".into()),
        identity: Some("operator-test".into()),
    }
}

#[tokio::test]
async fn operator_serves_grpc_health_and_stops_on_shutdown() {
    let nats = NatsServer::start().await.unwrap();
    let (client, mut api) = api_server::pair();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let server = tokio::spawn(serve_with_client(
        config(nats.url()),
        client,
        listener,
        shutdown.clone(),
    ));
    let empty: [careline_operator::crd::Tenant; 0] = [];
    api.expect(Method::GET, "/apis/careline.io/v1alpha1/tenants")
        .await
        .ok(&list("Tenant", &empty));

    // The listener is bound already: connecting waits until the server accepts.
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    shutdown.trigger();
    server.await.unwrap().expect("clean shutdown");
}

#[tokio::test]
async fn operator_without_its_crds_installed_says_how_to_install_them() {
    let (client, mut api) = api_server::pair();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = tokio::spawn(serve_with_client(
        config("nats://127.0.0.1:1".into()),
        client,
        listener,
        Shutdown::new(),
    ));
    api.expect(Method::GET, "/apis/careline.io/v1alpha1/tenants")
        .await
        .not_found();
    let error = server.await.unwrap().unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("kubectl apply -f charts/careline/crds/"),
        "{message}"
    );
}

#[tokio::test]
async fn client_for_an_https_api_server_builds_its_tls_stack() {
    // In a cluster the API server is https: building the client sets up rustls, which
    // panics at start-up unless exactly one crypto provider is compiled in.
    let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
    kube::Client::try_from(config).expect("a TLS client");
}
