//! A Router client for the tests of services that call the router (chat-gateway,
//! email-intake), and waiting until a freshly started router answers.

use std::net::SocketAddr;

use careline_proto::v1;
use careline_proto::v1::router_client::RouterClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::Bearer;

/// A Router client sending one tenant's API key.
pub type Router = RouterClient<InterceptedService<Channel, Bearer>>;

/// A client of the router at `addr` sending `api_key`.
pub async fn router_client(addr: SocketAddr, api_key: &str) -> Router {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("router connects");
    RouterClient::with_interceptor(channel, Bearer::new(api_key))
}

/// Returns once the router at `addr` answers `api_key`'s tenant (its
/// settings synced), failing the test past the default deadline.
pub async fn wait_router_ready(addr: SocketAddr, api_key: &str) {
    let mut router = router_client(addr, api_key).await;
    crate::assert_eventually!(
        router
            .get_queue_stats(v1::GetQueueStatsRequest::default())
            .await
            .is_ok(),
        "router ready"
    );
}
