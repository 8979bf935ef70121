//! Health and reflection on every GrpcServer.

use careline_kit::GrpcServer;
use careline_kit::grpc::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as PbStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha;

use crate::support::{Probe, Running};

async fn health_of(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> PbStatus {
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health check answers")
        .into_inner()
        .status()
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_added_service() {
    let server =
        GrpcServer::new().add_service(Probe::new(|_| async { Ok(tonic::Response::new(())) }));
    let health = server.health();
    let running = Running::start(server).await;
    let mut client = HealthClient::new(running.channel().await);

    assert_eq!(health_of(&mut client, "").await, PbStatus::Serving);
    assert_eq!(
        health_of(&mut client, "careline.test.Probe").await,
        PbStatus::Serving
    );

    health.set_all(ServingStatus::NotServing).await;
    assert_eq!(health_of(&mut client, "").await, PbStatus::NotServing);
    assert_eq!(
        health_of(&mut client, "careline.test.Probe").await,
        PbStatus::NotServing
    );

    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
}

#[tokio::test]
async fn reflection_v1_lists_careline_health_and_reflection_services() {
    let running = Running::start(GrpcServer::new()).await;
    let mut client = ServerReflectionClient::new(running.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection stream")
        .expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!(
            "expected a service list, got {:?}",
            response.message_response
        );
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "careline.v1.Router",
        "careline.v1.Presence",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
}

#[tokio::test]
async fn reflection_v1alpha_is_served_too() {
    let running = Running::start(GrpcServer::new()).await;
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(running.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "careline.v1.Router".to_owned(),
            ),
        ),
    };
    let response = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner()
        .message()
        .await
        .expect("reflection stream")
        .expect("one response");
    assert!(
        matches!(
            response.message_response,
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f))
                if !f.file_descriptor_proto.is_empty()
        ),
        "{:?}",
        response.message_response
    );

    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
}
