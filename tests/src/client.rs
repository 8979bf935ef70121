//! Clients of the platform as a tenant's integration and an agent desktop
//! see it: gRPC over loopback, the API key in `authorization` metadata.

use std::net::SocketAddr;
use std::time::Duration;

use careline_proto::v1::presence_client::PresenceClient;
use careline_proto::v1::router_client::RouterClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// How long a client waits for a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a unary call may take before the client gives up on it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A Router client that sends a tenant's API key with every call.
pub type Router = RouterClient<InterceptedService<Channel, Bearer>>;
/// A Presence client that sends a tenant's API key with every call
/// (supervisor calls; agent sessions authenticate in their login instead).
pub type Presence = PresenceClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <key>` to every request (shared with the services' own tests).
pub use careline_testkit::Bearer;

/// A channel to `addr` that connects on first use and reconnects after a
/// failure, so a client outlives the replica it first talked to.
pub fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid URI")
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect_lazy()
}

/// A channel for long-lived streams: no per-call timeout.
pub fn stream_channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid URI")
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_lazy()
}

/// A Router client of the replica at `addr`.
pub fn router(addr: SocketAddr, api_key: &str) -> Router {
    RouterClient::with_interceptor(channel(addr), Bearer::new(api_key))
}

/// A Presence client of the replica at `addr`.
pub fn presence(addr: SocketAddr, api_key: &str) -> Presence {
    PresenceClient::with_interceptor(channel(addr), Bearer::new(api_key))
}

/// Whether a call failed because of the replica or the connection rather
/// than the request: it may then be retried on another replica (with the
/// same idempotency key where the call creates something).
pub fn is_transport_failure(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded
    ) || (status.code() == Code::Internal && status.message().contains("h2"))
}
