//! chat-gateway integration tests: real Redis, NATS, router, presence and
//! gateway replicas; members over real WebSockets, agents over gRPC.

mod browser;
mod callback;
mod chat;
mod contact;
mod harness;
mod hostile;
mod replicas;
mod tls;
