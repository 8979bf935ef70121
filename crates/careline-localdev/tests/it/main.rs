//! careline-localdev's own tests: servers start on free ports, answer, restart on the
//! same port, and are gone once dropped.

mod nats;
mod nats_cluster;
mod redis;

/// Whether anything accepts TCP connections on the loopback `port`.
fn port_accepts(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A server whose port another process holds exits saying so, which is what makes the
/// throw-away servers start again on another free port.
#[tokio::test]
async fn a_server_on_a_taken_port_exits_as_port_taken() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = holder.local_addr().expect("its address").port();
    let nats_dir = tempfile::tempdir().expect("temp dir");
    let Err(nats) =
        careline_localdev::NatsServer::start_at(nats_dir.path().to_path_buf(), port).await
    else {
        panic!("nats-server cannot listen on a taken port")
    };
    assert!(nats.port_taken(), "{nats}");
    let redis_dir = tempfile::tempdir().expect("temp dir");
    let Err(redis) =
        careline_localdev::RedisServer::start_at(redis_dir.path().to_path_buf(), port).await
    else {
        panic!("redis-server cannot listen on a taken port")
    };
    assert!(redis.port_taken(), "{redis}");
}
