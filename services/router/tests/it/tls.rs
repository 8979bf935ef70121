//! The real `careline-router` binary with encryption in transit everywhere, configured only by
//! its env vars: mTLS on its gRPC port, `rediss://` to a Redis that verifies clients, and
//! `tls://` to a NATS that does too, all with a CA generated at test time.

use std::process::{Child, Command, Stdio};

use careline_bus::TenantStore;
use careline_kit::config::{ENV_METRICS_ADDR, ENV_NATS_URL, ENV_REDIS_URL};
use careline_kit::tls::{ENV_TLS_CA, ENV_TLS_CERT, ENV_TLS_CLIENT_CA, ENV_TLS_KEY};
use careline_kit::{CommonConfig, TlsConfig};
use careline_proto::v1;
use careline_testkit::router::{router_client_tls, wait_router_ready_tls};
use careline_testkit::{Bearer, NatsAccess, NatsServer, RedisServer, TestPki, free_port};

use crate::harness::{DEMO_KEY, create, demo};

/// The router process, killed on drop.
struct RouterProcess(Child);

impl Drop for RouterProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_router_binary_serves_mtls_and_reaches_redis_and_nats_over_tls() {
    let pki = TestPki::generate("careline");
    let redis = RedisServer::start_tls(pki.local_server(true))
        .await
        .unwrap();
    let nats = NatsServer::start_with_access(NatsAccess {
        tls: Some(pki.local_server(true)),
        user_password: None,
    })
    .await
    .unwrap();
    // The tenant goes in as `careline config apply` would put it, over TLS too.
    let service_tls: TlsConfig = pki.server_config(true);
    let admin = CommonConfig {
        nats_url: nats.url(),
        tls: service_tls.clone(),
        ..CommonConfig::default()
    };
    let client = careline_kit::nats_client::options(&admin)
        .await
        .unwrap()
        .connect(nats.url())
        .await
        .expect("NATS over TLS");
    TenantStore::open(&async_nats::jetstream::new(client), None)
        .await
        .unwrap()
        .put(&demo())
        .await
        .unwrap();

    let port = free_port().unwrap();
    let path = |p: Option<std::path::PathBuf>| p.unwrap().display().to_string();
    let _router = RouterProcess(
        Command::new(env!("CARGO_BIN_EXE_careline-router"))
            .env("CARELINE_ROUTER_ADDR", format!("127.0.0.1:{port}"))
            .env(ENV_REDIS_URL, redis.tls_url().unwrap())
            .env(ENV_NATS_URL, nats.url())
            .env(ENV_METRICS_ADDR, "off")
            .env(ENV_TLS_CERT, path(service_tls.tls_cert))
            .env(ENV_TLS_KEY, path(service_tls.tls_key))
            .env(ENV_TLS_CLIENT_CA, path(service_tls.tls_client_ca))
            .env(ENV_TLS_CA, path(service_tls.tls_ca))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("careline-router starts"),
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let with_certificate = pki.client_config(true).load().unwrap();

    wait_router_ready_tls(addr, DEMO_KEY, &with_certificate).await;
    let mut router = router_client_tls(addr, DEMO_KEY, &with_certificate).await;
    let created = router
        // Email: accepted at any hour (the binary runs on the real clock).
        .create_interaction(create("general", v1::Channel::Email, "tls-1"))
        .await
        .expect("a contact is created over mTLS")
        .into_inner();
    assert!(created.interaction.is_some_and(|ix| !ix.id.is_empty()));

    // No client certificate: refused, whatever the API key. Under TLS 1.3 the client may
    // finish its side of the handshake first: the refusal then surfaces on the first call.
    let without_certificate = pki.client_config(false).load().unwrap();
    let refused = match without_certificate
        .grpc_endpoint(&format!("https://localhost:{port}"))
        .unwrap()
        .connect()
        .await
    {
        Err(error) => Err(error.to_string()),
        Ok(channel) => {
            v1::router_client::RouterClient::with_interceptor(channel, Bearer::new(DEMO_KEY))
                .get_queue_stats(v1::GetQueueStatsRequest::default())
                .await
                .map_err(|status| status.to_string())
        }
    };
    assert!(refused.is_err(), "{refused:?}");
}
