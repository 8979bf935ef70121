//! Integration tests of careline-kit against real peers: a real tonic server on 127.0.0.1:0
//! and real tonic clients, a real HTTP exchange with the metrics endpoint, TLS handshakes with
//! a CA generated at test time.

mod auth;
mod config;
mod grpc;
mod limits;
mod metrics;
mod shutdown;
mod support;
mod telemetry;
mod tls;
mod tracing_context;
