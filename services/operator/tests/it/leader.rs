//! Leader election on the Lease, against the mocked API server: who takes the lease, when,
//! and that a lost race is not mistaken for leading.

use careline_operator::leader::{LEASE_DURATION, LEASE_NAME, LeaseLock};
use http::{Method, StatusCode};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::ObjectMeta;

use crate::api_server::{self, ApiServer};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/careline/leases";
const ME: &str = "operator-a";

fn lease_path() -> String {
    format!("{LEASES}/{LEASE_NAME}")
}

fn lease(holder: Option<&str>, resource_version: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            namespace: Some("careline".into()),
            resource_version: Some(resource_version.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            renew_time: Some(MicroTime("2026-11-27T01:00:00Z".parse().unwrap())),
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        }),
    }
}

fn lock() -> (LeaseLock, ApiServer) {
    let (client, api) = api_server::pair();
    (LeaseLock::new(client, "careline", ME.into()), api)
}

#[tokio::test]
async fn missing_lease_is_created_and_held() {
    let (mut lock, mut api) = lock();
    let attempt = tokio::spawn(async move { lock.try_acquire_or_renew().await });
    api.expect(Method::GET, &lease_path()).await.not_found();
    let create = api.expect(Method::POST, LEASES).await;
    let body: Lease = serde_json::from_value(create.body.clone()).unwrap();
    assert_eq!(body.spec.unwrap().holder_identity.as_deref(), Some(ME));
    let echoed = create.body.clone();
    create.ok(&echoed);
    assert!(attempt.await.unwrap().unwrap(), "leading");
    api.assert_idle();
}

#[tokio::test]
async fn lease_another_replica_holds_is_left_alone() {
    let (mut lock, mut api) = lock();
    let attempt = tokio::spawn(async move { lock.try_acquire_or_renew().await });
    api.expect(Method::GET, &lease_path())
        .await
        .ok(&lease(Some("operator-b"), "7"));
    assert!(!attempt.await.unwrap().unwrap(), "not leading");
    api.assert_idle();
}

#[tokio::test(start_paused = true)]
async fn lease_whose_holder_stopped_renewing_is_taken_over_after_its_duration() {
    let (mut lock, mut api) = lock();
    let stale = lease(Some("operator-b"), "7");
    let first = tokio::spawn(async move {
        let leading = lock.try_acquire_or_renew().await;
        (lock, leading)
    });
    api.expect(Method::GET, &lease_path()).await.ok(&stale);
    let (mut lock, leading) = first.await.unwrap();
    assert!(!leading.unwrap(), "the holder may still be renewing");

    // Virtual time: the same record, unchanged for a whole lease duration.
    tokio::time::advance(LEASE_DURATION).await;
    let second = tokio::spawn(async move { lock.try_acquire_or_renew().await });
    api.expect(Method::GET, &lease_path()).await.ok(&stale);
    let replace = api.expect(Method::PUT, &lease_path()).await;
    let body: Lease = serde_json::from_value(replace.body.clone()).unwrap();
    assert_eq!(
        body.metadata.resource_version.as_deref(),
        Some("7"),
        "optimistic concurrency"
    );
    let spec = body.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(ME));
    assert_eq!(spec.lease_transitions, Some(5));
    let echoed = replace.body.clone();
    replace.ok(&echoed);
    assert!(second.await.unwrap().unwrap(), "leading");
    api.assert_idle();
}

#[tokio::test]
async fn losing_the_race_for_a_released_lease_is_not_leading() {
    let (mut lock, mut api) = lock();
    let attempt = tokio::spawn(async move { lock.try_acquire_or_renew().await });
    api.expect(Method::GET, &lease_path())
        .await
        .ok(&lease(None, "9"));
    api.expect(Method::PUT, &lease_path())
        .await
        .status(StatusCode::CONFLICT, "Conflict");
    assert!(!attempt.await.unwrap().unwrap(), "another replica won");
    api.assert_idle();
}
