//! A running GrpcServer, and a one-method test service standing in for a real Careline service.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use careline_kit::{GrpcServer, KitError, Shutdown};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A GrpcServer serving on a loopback port in a task.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub served: JoinHandle<Result<(), KitError>>,
}

impl Running {
    pub async fn start(server: GrpcServer) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = Shutdown::new();
        let served = tokio::spawn(server.serve(listener, shutdown.wait()));
        Running {
            addr,
            shutdown,
            served,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("valid uri")
            .connect()
            .await
            .expect("connect to the test server")
    }

    /// Waits (with the deadline) for the serve future to return.
    pub async fn stopped(self) -> Result<(), KitError> {
        tokio::time::timeout(DEADLINE, self.served)
            .await
            .expect("server stops before the deadline")
            .expect("serve task does not panic")
    }
}

type Handler = Arc<
    dyn Fn(Request<()>) -> Pin<Box<dyn Future<Output = Result<Response<()>, Status>> + Send>>
        + Send
        + Sync,
>;

/// `careline.test.Probe/Call`: a unary RPC with empty messages whose behaviour is a closure.
#[derive(Clone)]
pub struct Probe {
    handler: Handler,
}

impl Probe {
    pub const PATH: &'static str = "/careline.test.Probe/Call";

    pub fn new<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<()>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<()>, Status>> + Send + 'static,
    {
        Self {
            handler: Arc::new(move |req| Box::pin(handler(req))),
        }
    }

    /// Calls the probe over `channel` with the given metadata.
    pub async fn call(
        channel: Channel,
        metadata: &[(&'static str, &str)],
    ) -> Result<Response<()>, Status> {
        let mut client = tonic::client::Grpc::new(channel);
        client
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut request = Request::new(());
        for (key, value) in metadata {
            request
                .metadata_mut()
                .insert(*key, value.parse().expect("ascii metadata"));
        }
        client
            .unary(
                request,
                http::uri::PathAndQuery::from_static(Self::PATH),
                ProstCodec::<(), ()>::default(),
            )
            .await
    }
}

impl NamedService for Probe {
    const NAME: &'static str = "careline.test.Probe";
}

struct ProbeCall(Handler);

impl tonic::server::UnaryService<()> for ProbeCall {
    type Response = ();
    type Future = Pin<Box<dyn Future<Output = Result<Response<()>, Status>> + Send>>;

    fn call(&mut self, request: Request<()>) -> Self::Future {
        (self.0)(request)
    }
}

impl tower::Service<http::Request<Body>> for Probe {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let handler = self.handler.clone();
        Box::pin(async move {
            if request.uri().path() != Self::PATH {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<(), ()>::default());
            Ok(grpc.unary(ProbeCall(handler), request).await)
        })
    }
}
