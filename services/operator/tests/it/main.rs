//! Integration tests of the operator: its reconcilers against kube's mocked API server
//! (expected request/response pairs) and a real nats-server with JetStream, plus the
//! check that the committed CRD YAML matches the Rust types.

mod api_server;
mod crds;
mod fixture;
mod leader;
mod reconcile;
mod serve;
