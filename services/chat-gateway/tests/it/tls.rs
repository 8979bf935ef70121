//! chat-gateway with a certificate: its HTTP port (widget, member WebSocket) serves HTTPS
//! without asking members for a certificate, and its gRPC port requires the client CA's
//! certificates, with a CA generated at test time.

use careline_chat_gateway::ChatGatewayConfig;
use careline_kit::Shutdown;
use careline_proto::v1;
use careline_proto::v1::chat_gateway_client::ChatGatewayClient;
use careline_testkit::TestPki;
use careline_testkit::demo::API_KEY as DEMO_KEY;
use tonic::Code;

use crate::harness::Platform;

/// `GetTranscript` of an unknown interaction over TLS as `client` is configured: NOT_FOUND
/// means the service itself answered.
async fn transcript_code(port: u16, client: &careline_kit::TlsConfig) -> Result<Code, String> {
    let channel = client
        .load()
        .unwrap()
        .grpc_endpoint(&format!("https://localhost:{port}"))
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let request = careline_testkit::bearer::request(
        v1::GetTranscriptRequest {
            interaction_id: "ix_00000000000000000000000000".into(),
        },
        DEMO_KEY,
    );
    let status = ChatGatewayClient::new(channel)
        .get_transcript(request)
        .await
        .expect_err("no such interaction");
    Ok(status.code())
}

#[tokio::test]
async fn with_a_certificate_http_serves_https_to_anyone_and_grpc_requires_client_certificates() {
    let platform = Platform::start().await;
    let pki = TestPki::generate("careline");
    let config = ChatGatewayConfig {
        common: careline_kit::CommonConfig {
            tls: pki.server_config(true),
            ..platform.gateway_config().common
        },
        ..platform.gateway_config()
    };
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc_port, http_addr) = (
        grpc.local_addr().unwrap().port(),
        http.local_addr().unwrap(),
    );
    let shutdown = Shutdown::new();
    let served = tokio::spawn(careline_chat_gateway::serve_with_http(
        config,
        grpc,
        http,
        shutdown.clone(),
    ));

    careline_testkit::assert_eventually!(
        transcript_code(grpc_port, &pki.client_config(true)).await == Ok(Code::NotFound),
        "chat-gateway answers gRPC over mTLS"
    );
    let widget = pki.https_get(http_addr, "/widget.js").await.expect("HTTPS");
    assert!(widget.starts_with("HTTP/1.1 200"), "{widget}");
    let without_certificate = transcript_code(grpc_port, &pki.client_config(false)).await;
    assert_ne!(without_certificate, Ok(Code::NotFound));
    let other = TestPki::generate("other");
    assert!(other.https_get(http_addr, "/widget.js").await.is_err());

    shutdown.trigger();
    served.await.unwrap().unwrap();
}
