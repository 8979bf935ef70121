//! TLS and mTLS on GrpcServer and the metrics endpoint, and the TLS of the connections to
//! Redis (`rediss://`) and NATS, with a CA generated at test time: real handshakes with real
//! servers (redis-server --tls-port, nats-server with a tls block).

use careline_kit::metrics::serve_metrics;
use careline_kit::{CommonConfig, GrpcServer, RedisConnection, Shutdown, Tls, TlsConfig};
use careline_testkit::{NatsAccess, NatsServer, RedisServer, TestPki};
use futures::StreamExt as _;
use tokio::net::{TcpListener, TcpStream};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::metrics::http_exchange;
use crate::support::{DEADLINE, Running};

fn load(config: &TlsConfig) -> Tls {
    config.load().expect("test certificates load")
}

/// A health check over `https://localhost:PORT` as `client` is configured; the error as text.
async fn health_over_tls(running: &Running, client: &Tls) -> Result<ServingStatus, String> {
    let url = format!("https://localhost:{}", running.addr.port());
    let call = async {
        let channel = client
            .grpc_endpoint(&url)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map(|response| response.into_inner().status())
            .map_err(|status| format!("call: {status}"))
    };
    tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the handshake ends before the deadline")
}

async fn tls_server(pki: &TestPki, client_certificates: bool) -> Running {
    Running::start(GrpcServer::new().tls(load(&pki.server_config(client_certificates)))).await
}

#[tokio::test]
async fn a_client_trusting_the_ca_completes_a_grpc_call_over_tls() {
    let pki = TestPki::generate("careline");
    let running = tls_server(&pki, false).await;

    let status = health_over_tls(&running, &load(&pki.client_config(false))).await;

    assert_eq!(status, Ok(ServingStatus::Serving));
}

#[tokio::test]
async fn a_client_trusting_another_ca_refuses_the_server() {
    let pki = TestPki::generate("careline");
    let other = TestPki::generate("other");
    let running = tls_server(&pki, false).await;

    let error = health_over_tls(&running, &load(&other.client_config(false)))
        .await
        .unwrap_err();

    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn a_plaintext_client_gets_no_answer_from_a_tls_server() {
    let pki = TestPki::generate("careline");
    let running = tls_server(&pki, false).await;

    let call = async {
        let mut client = HealthClient::new(running.channel().await);
        client.check(HealthCheckRequest::default()).await
    };
    let result = tokio::time::timeout(DEADLINE, call).await.expect("answers");

    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn with_a_client_ca_a_client_without_a_certificate_is_refused() {
    let pki = TestPki::generate("careline");
    let running = tls_server(&pki, true).await;

    let result = health_over_tls(&running, &load(&pki.client_config(false))).await;

    // The handshake or, under TLS 1.3, the first call fails: never an answer.
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn with_a_client_ca_a_certificate_from_another_ca_is_refused() {
    let pki = TestPki::generate("careline");
    let other = TestPki::generate("other");
    let running = tls_server(&pki, true).await;
    // Trusts the server's CA but presents a certificate the server's client CA did not sign.
    let client = TlsConfig {
        tls_ca: Some(pki.ca()),
        ..other.client_config(true)
    };

    let result = health_over_tls(&running, &load(&client)).await;

    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn with_a_client_ca_a_certificate_it_signed_is_accepted() {
    let pki = TestPki::generate("careline");
    let running = tls_server(&pki, true).await;

    let status = health_over_tls(&running, &load(&pki.client_config(true))).await;

    assert_eq!(status, Ok(ServingStatus::Serving));
}

#[tokio::test]
async fn configure_takes_tls_from_the_common_config() {
    let pki = TestPki::generate("careline");
    let common = CommonConfig {
        tls: pki.server_config(true),
        ..CommonConfig::default()
    };
    let running = Running::start(GrpcServer::new().configure(&common).unwrap()).await;

    assert!(
        health_over_tls(&running, &load(&pki.client_config(false)))
            .await
            .is_err()
    );
    let status = health_over_tls(&running, &load(&pki.client_config(true))).await;
    assert_eq!(status, Ok(ServingStatus::Serving));
}

#[tokio::test]
async fn unusable_tls_files_are_config_errors_naming_the_setting_and_the_file() {
    let pki = TestPki::generate("careline");
    let garbage = pki.dir().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let missing = pki.dir().join("missing.pem");
    let cases = [
        (
            TlsConfig {
                tls_cert: Some(missing.clone()),
                ..pki.server_config(false)
            },
            "CARELINE_TLS_CERT (--tls-cert)",
            "missing.pem",
        ),
        (
            TlsConfig {
                tls_cert: Some(garbage.clone()),
                ..pki.server_config(false)
            },
            "CARELINE_TLS_CERT (--tls-cert)",
            "garbage.pem",
        ),
        (
            TlsConfig {
                tls_key: Some(garbage.clone()),
                ..pki.server_config(false)
            },
            "CARELINE_TLS_KEY (--tls-key)",
            "garbage.pem",
        ),
        (
            // A key that is not the certificate's.
            TlsConfig {
                tls_key: Some(pki.client_key()),
                ..pki.server_config(false)
            },
            "CARELINE_TLS_KEY (--tls-key)",
            "client-key.pem",
        ),
        (
            TlsConfig {
                tls_client_ca: Some(garbage.clone()),
                ..pki.server_config(false)
            },
            "CARELINE_TLS_CLIENT_CA (--tls-client-ca)",
            "garbage.pem",
        ),
        (
            TlsConfig {
                tls_ca: Some(missing.clone()),
                ..TlsConfig::default()
            },
            "CARELINE_TLS_CA (--tls-ca)",
            "missing.pem",
        ),
        (
            TlsConfig {
                tls_key: None,
                ..pki.server_config(false)
            },
            "CARELINE_TLS_KEY (--tls-key)",
            "set both or neither",
        ),
        (
            TlsConfig {
                tls_client_ca: Some(pki.ca()),
                ..TlsConfig::default()
            },
            "CARELINE_TLS_CLIENT_CA (--tls-client-ca)",
            "--tls-cert",
        ),
    ];
    for (config, field, names) in cases {
        let error = config.load().unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("invalid config {field}: ")),
            "{error}"
        );
        assert!(error.contains(names), "{error}");
        // The whole service config says the same at start-up.
        let common = CommonConfig {
            tls: config,
            ..CommonConfig::default()
        };
        assert_eq!(common.validate().unwrap_err().to_string(), error);
    }
}

#[tokio::test]
async fn the_metrics_endpoint_serves_https_with_the_service_certificate() {
    let pki = TestPki::generate("careline");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    // A client CA does not apply here: kubelet probes present no certificate.
    let served = tokio::spawn(serve_metrics(
        listener,
        load(&pki.server_config(true)),
        shutdown.wait(),
    ));

    let response = tokio::time::timeout(DEADLINE, pki.https_get(addr, "/healthz"))
        .await
        .expect("answers")
        .expect("TLS handshake with the metrics endpoint");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // Plaintext gets no HTTP answer.
    let plain = tokio::time::timeout(
        DEADLINE,
        http_exchange(TcpStream::connect(addr).await.unwrap(), "/healthz"),
    )
    .await
    .expect("the connection ends");
    assert!(!plain.contains("200 OK"), "{plain}");

    shutdown.trigger();
    served.await.unwrap().unwrap();
}

/// PING over `url` with `client`'s TLS settings; the error as text.
async fn redis_ping(url: &str, client: &Tls) -> Result<String, String> {
    let ping = async {
        let mut conn = RedisConnection::connect(url, client)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| format!("ping: {e}"))
    };
    tokio::time::timeout(REDIS_GIVES_UP, ping)
        .await
        .expect("the connection ends before the deadline")
}

/// How long a refused Redis connection may take to be reported: the connection manager
/// retries with backoff (about 10 s in all) before it gives up.
const REDIS_GIVES_UP: std::time::Duration = std::time::Duration::from_secs(60);

#[tokio::test]
async fn rediss_reaches_a_tls_redis_whose_certificate_the_ca_file_signed() {
    let pki = TestPki::generate("careline");
    let redis = RedisServer::start_tls(pki.local_server(false))
        .await
        .unwrap();
    let url = redis.tls_url().unwrap();

    assert_eq!(
        redis_ping(&url, &load(&pki.client_config(false))).await,
        Ok("PONG".to_owned())
    );
    let other = TestPki::generate("other");
    let error = redis_ping(&url, &load(&other.client_config(false)))
        .await
        .unwrap_err();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn rediss_presents_the_service_certificate_to_a_redis_that_verifies_clients() {
    let pki = TestPki::generate("careline");
    let redis = RedisServer::start_tls(pki.local_server(true))
        .await
        .unwrap();
    let url = redis.tls_url().unwrap();

    assert_eq!(
        redis_ping(&url, &load(&pki.server_config(false))).await,
        Ok("PONG".to_owned())
    );
    assert!(
        redis_ping(&url, &load(&pki.client_config(false)))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn plain_redis_and_nats_urls_are_reached_in_plaintext_by_a_service_that_serves_tls() {
    let pki = TestPki::generate("careline");
    let redis = RedisServer::start().await.unwrap();
    let nats = NatsServer::start().await.unwrap();

    let pong = redis_ping(&redis.url(), &load(&pki.server_config(true))).await;
    let round_trip = nats_round_trip(&nats.url(), pki.server_config(true)).await;

    assert_eq!(pong, Ok("PONG".to_owned()));
    assert_eq!(round_trip, Ok(()));
}

/// A NATS client as a service configured with `nats_url` and `tls` connects: a message
/// published goes round through the server. The error as text.
async fn nats_round_trip(nats_url: &str, tls: TlsConfig) -> Result<(), String> {
    let common = CommonConfig {
        nats_url: nats_url.to_owned(),
        tls,
        ..CommonConfig::default()
    };
    let round_trip = async {
        let client = careline_kit::nats_client::options(&common)
            .await
            .map_err(|e| e.to_string())?
            .connect(careline_bus::server_list(&common.nats_url))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut inbox = client
            .subscribe("careline.test.tls")
            .await
            .map_err(|e| e.to_string())?;
        client
            .publish("careline.test.tls", "sealed".into())
            .await
            .map_err(|e| e.to_string())?;
        let message = inbox.next().await.ok_or("subscription ended")?;
        assert_eq!(message.payload, "sealed");
        Ok(())
    };
    tokio::time::timeout(DEADLINE, round_trip)
        .await
        .expect("the connection ends before the deadline")
}

#[tokio::test]
async fn nats_over_tls_with_a_user_and_password_carries_messages() {
    let pki = TestPki::generate("careline");
    let nats = NatsServer::start_with_access(NatsAccess {
        tls: Some(pki.local_server(false)),
        user_password: Some(("careline".into(), "s3cret-pw".into())),
    })
    .await
    .unwrap();
    let port = nats.port();

    let with_password = format!("tls://careline:s3cret-pw@127.0.0.1:{port}");
    assert_eq!(
        nats_round_trip(&with_password, pki.client_config(false)).await,
        Ok(())
    );
    let wrong_password = format!("tls://careline:guess@127.0.0.1:{port}");
    assert!(
        nats_round_trip(&wrong_password, pki.client_config(false))
            .await
            .is_err()
    );
    let other = TestPki::generate("other");
    let error = nats_round_trip(&with_password, other.client_config(false))
        .await
        .unwrap_err();
    assert!(
        error.contains("UnknownIssuer") || error.contains("certificate"),
        "{error}"
    );
}

#[tokio::test]
async fn nats_that_verifies_clients_takes_the_service_certificate() {
    let pki = TestPki::generate("careline");
    let nats = NatsServer::start_with_access(NatsAccess {
        tls: Some(pki.local_server(true)),
        user_password: None,
    })
    .await
    .unwrap();

    assert_eq!(
        nats_round_trip(&nats.url(), pki.server_config(false)).await,
        Ok(())
    );
    assert!(
        nats_round_trip(&nats.url(), pki.client_config(false))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_unreadable_nats_credentials_file_is_a_config_error_naming_it() {
    let common = CommonConfig {
        nats_creds: Some("/nonexistent/careline.creds".into()),
        ..CommonConfig::default()
    };

    let error = common.validate().unwrap_err().to_string();

    assert!(
        error.starts_with("invalid config CARELINE_NATS_CREDS (--nats-creds): cannot read /nonexistent/careline.creds"),
        "{error}"
    );
}
