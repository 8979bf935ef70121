//! Tenant API-key authentication on a real gRPC server.

use std::collections::HashMap;

use careline_domain::tenant::Scope;
use careline_kit::auth::{INVALID_KEY_MESSAGE, MISSING_CREDENTIALS_MESSAGE, api_key_sha256_hex};
use careline_kit::{Caller, GrpcServer, TenantAuth, authorize};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;

use crate::support::{Probe, Running};

/// A probe that answers with the authenticated tenant in `x-tenant`, or `authorize`'s error.
async fn start_tenant_echo() -> Running {
    let caller = Caller {
        tenant: "acme".to_owned(),
        key_id: "ivr".to_owned(),
        scopes: vec![Scope::Intake],
    };
    let keys = HashMap::from([(api_key_sha256_hex("acme-secret-key"), caller)]);
    let echo = Probe::new(|request| async move {
        let tenant = authorize(&request, &[Scope::Intake])?;
        let mut response = tonic::Response::new(());
        response
            .metadata_mut()
            .insert("x-tenant", tenant.parse().expect("ascii tenant id"));
        Ok(response)
    });
    let server =
        GrpcServer::new().add_service(InterceptedService::new(echo, TenantAuth::new(keys)));
    Running::start(server).await
}

#[tokio::test]
async fn good_key_authenticates_the_tenant_by_bearer_or_x_api_key() {
    let running = start_tenant_echo().await;
    for metadata in [
        ("authorization", "Bearer acme-secret-key"),
        ("x-api-key", "acme-secret-key"),
    ] {
        let response = Probe::call(running.channel().await, &[metadata])
            .await
            .expect("authenticated call succeeds");
        assert_eq!(
            response
                .metadata()
                .get("x-tenant")
                .and_then(|v| v.to_str().ok()),
            Some("acme")
        );
    }
    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
}

#[tokio::test]
async fn wrong_key_is_unauthenticated_before_the_handler() {
    let running = start_tenant_echo().await;
    let status = Probe::call(
        running.channel().await,
        &[("authorization", "Bearer guessed")],
    )
    .await
    .expect_err("wrong key refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), INVALID_KEY_MESSAGE);
    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
}

#[tokio::test]
async fn no_key_reaches_the_handler_without_a_tenant() {
    let running = start_tenant_echo().await;
    let status = Probe::call(running.channel().await, &[])
        .await
        .expect_err("authorize refuses");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), MISSING_CREDENTIALS_MESSAGE);
    running.shutdown.trigger();
    running.stopped().await.expect("clean stop");
}
