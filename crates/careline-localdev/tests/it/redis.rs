//! RedisServer: answers, restarts on the same port (empty, or with its
//! append-only file when durable), gone after drop.

use careline_localdev::{AppendFsync, RedisServer};
use careline_testkit::assert_eventually;
use redis::AsyncCommands;

use crate::port_accepts;

#[tokio::test]
async fn redis_server_answers_and_is_gone_after_drop() -> anyhow::Result<()> {
    let server = RedisServer::start().await?;
    let port = server.port();
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/"));

    let mut conn = redis::Client::open(server.url())?
        .get_multiplexed_async_connection()
        .await?;
    let _: () = conn.set("greeting", "hello").await?;
    let value: String = conn.get("greeting").await?;
    assert_eq!(value, "hello");

    drop(server);
    assert!(
        !port_accepts(port),
        "redis-server still listening on {port} after drop"
    );
    Ok(())
}

#[tokio::test]
async fn redis_restart_comes_back_empty_on_the_same_port() -> anyhow::Result<()> {
    let mut server = RedisServer::start().await?;
    let port = server.port();
    let mut conn = redis::aio::ConnectionManager::new(redis::Client::open(server.url())?).await?;
    let _: () = conn.set("k", "v").await?;

    server.kill();
    assert!(!port_accepts(port), "killed redis-server still listening");

    server.restart().await?;
    assert_eq!(server.port(), port);
    // The connection manager reconnects by itself; the data did not persist.
    assert_eventually!(
        matches!(conn.exists::<_, bool>("k").await, Ok(false)),
        "the reconnecting client sees the restarted, empty server"
    );
    Ok(())
}

#[tokio::test]
async fn durable_redis_keeps_acknowledged_writes_across_a_kill() -> anyhow::Result<()> {
    for fsync in [AppendFsync::Always, AppendFsync::EverySec] {
        let mut server = RedisServer::start_durable(fsync).await?;
        let mut conn =
            redis::aio::ConnectionManager::new(redis::Client::open(server.url())?).await?;
        let _: () = conn.set("k", "v").await?;
        let mode: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendfsync")
            .query_async(&mut conn)
            .await?;
        assert_eq!(mode, ["appendfsync", fsync.as_str()]);

        server.kill();
        server.restart().await?;
        assert_eventually!(
            matches!(conn.get::<_, Option<String>>("k").await, Ok(Some(ref v)) if v == "v"),
            "the write acknowledged before the kill is back (appendfsync {})",
            fsync.as_str()
        );
    }
    Ok(())
}
