//! chat-gateway integration tests: real Redis, NATS, router, presence and
//! gateway replicas; members over real WebSockets, agents over gRPC.

mod chat;
mod harness;
mod hostile;
mod replicas;
