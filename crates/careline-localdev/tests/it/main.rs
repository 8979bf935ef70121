//! careline-localdev's own tests: servers start on free ports, answer, restart on the
//! same port, and are gone once dropped.

mod nats;
mod nats_cluster;
mod redis;

/// Whether anything accepts TCP connections on the loopback `port`.
fn port_accepts(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
