//! A Router client for the tests of services that call the router (chat-gateway,
//! email-intake), and waiting until a freshly started router answers, in plaintext or TLS.

use std::net::SocketAddr;

use careline_kit::Tls;
use careline_proto::v1;
use careline_proto::v1::router_client::RouterClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::Bearer;

/// A Router client sending one tenant's API key.
pub type Router = RouterClient<InterceptedService<Channel, Bearer>>;

/// A client of the router at `addr` sending `api_key`.
pub async fn router_client(addr: SocketAddr, api_key: &str) -> Router {
    let endpoint = Tls::default().grpc_endpoint(&format!("http://{addr}"));
    connected(endpoint.unwrap(), api_key).await
}

/// A client of the TLS router at `addr` (reached as `https://localhost:PORT`, the name test
/// certificates carry) sending `api_key`, with `tls`'s CA and client certificate.
pub async fn router_client_tls(addr: SocketAddr, api_key: &str, tls: &Tls) -> Router {
    connected(tls_endpoint(addr, tls), api_key).await
}

fn tls_endpoint(addr: SocketAddr, tls: &Tls) -> Endpoint {
    tls.grpc_endpoint(&format!("https://localhost:{}", addr.port()))
        .unwrap()
}

async fn connected(endpoint: Endpoint, api_key: &str) -> Router {
    let channel = endpoint.connect().await.expect("router connects");
    RouterClient::with_interceptor(channel, Bearer::new(api_key))
}

/// Returns once the router at `addr` answers `api_key`'s tenant (its
/// settings synced), failing the test past the default deadline.
pub async fn wait_router_ready(addr: SocketAddr, api_key: &str) {
    let endpoint = Tls::default().grpc_endpoint(&format!("http://{addr}"));
    wait_ready(endpoint.unwrap(), api_key).await;
}

/// [`wait_router_ready`] for a TLS router, as [`router_client_tls`] reaches it; the router may
/// still be starting (a process not yet listening).
pub async fn wait_router_ready_tls(addr: SocketAddr, api_key: &str, tls: &Tls) {
    wait_ready(tls_endpoint(addr, tls), api_key).await;
}

async fn wait_ready(endpoint: Endpoint, api_key: &str) {
    // Connected on first use and reconnected on each call: a refused connection is retried.
    let mut router = RouterClient::with_interceptor(endpoint.connect_lazy(), Bearer::new(api_key));
    crate::assert_eventually!(
        router
            .get_queue_stats(v1::GetQueueStatsRequest::default())
            .await
            .is_ok(),
        "router ready"
    );
}
