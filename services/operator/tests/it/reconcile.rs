//! Reconciling Tenants and ContactQueues: what reaches the configuration bucket (a real
//! nats-server) and what the API server (mocked) is asked to write.

use std::sync::Arc;

use careline_operator::controller::{RESYNC, reconcile_queue, reconcile_tenant};
use careline_operator::crd::{ConfigStatus, ContactQueue, Tenant};
use careline_testkit::demo;
use http::Method;
use kube::runtime::controller::Action;
use serde_json::Value;

use crate::api_server::ApiServer;
use crate::fixture::{Harness, Resources, SECRET_NAMESPACE, example, list};

const TENANTS: &str = "/apis/careline.io/v1alpha1/tenants";
const QUEUES: &str = "/apis/careline.io/v1alpha1/contactqueues";

fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/{SECRET_NAMESPACE}/secrets/{name}")
}

/// The status a status patch writes.
fn patched_status(body: &Value) -> ConfigStatus {
    serde_json::from_value(body["status"].clone()).expect("a status patch")
}

/// Answers the reads of a Tenant's reconcile: the Tenant, all ContactQueues, its Secret.
async fn serve_reads(api: &mut ApiServer, r: &Resources) {
    let name = r.tenant.metadata.name.clone().unwrap();
    api.expect(Method::GET, &format!("{TENANTS}/{name}"))
        .await
        .ok(&r.tenant);
    api.expect(Method::GET, QUEUES)
        .await
        .ok(&list("ContactQueue", &r.queues));
    for key in &r.tenant.spec.api_keys {
        let pending = api
            .expect(Method::GET, &secret_path(&key.secret_key_ref.name))
            .await;
        match &r.secret.metadata.name {
            Some(n) if *n == key.secret_key_ref.name => pending.ok(&r.secret),
            _ => pending.not_found(),
        }
    }
}

/// Answers one status patch of `name` (of `path`), returning the status written.
async fn serve_status_patch(
    api: &mut ApiServer,
    path: &str,
    name: &str,
    object: &impl serde::Serialize,
) -> ConfigStatus {
    let pending = api
        .expect(Method::PATCH, &format!("{path}/{name}/status"))
        .await;
    assert!(
        pending.uri.contains("fieldManager=careline-operator"),
        "{}",
        pending.uri
    );
    let status = patched_status(&pending.body);
    let mut answer = serde_json::to_value(object).unwrap();
    answer["status"] = serde_json::to_value(&status).unwrap();
    pending.ok(&answer);
    status
}

fn ready(status: &ConfigStatus) -> (&str, &str) {
    let ready = status.ready().expect("a Ready condition");
    (ready.status.as_str(), ready.reason.as_str())
}

#[tokio::test]
async fn valid_tenant_and_queues_store_the_same_config_as_config_apply_and_report_ready() {
    let (harness, mut api) = Harness::start().await;
    let r = example();
    let reconcile = tokio::spawn(reconcile_tenant(
        Arc::new(r.tenant.clone()),
        harness.ctx.clone(),
    ));

    serve_reads(&mut api, &r).await;
    let tenant_status = serve_status_patch(&mut api, TENANTS, "demo-health", &r.tenant).await;
    assert_eq!(ready(&tenant_status), ("True", "Applied"));
    assert_eq!(tenant_status.observed_generation, Some(3));
    assert_eq!(tenant_status.ready().unwrap().observed_generation, Some(3));
    for queue in &r.queues {
        let name = queue.metadata.name.clone().unwrap();
        let status = serve_status_patch(&mut api, QUEUES, &name, queue).await;
        assert_eq!(ready(&status), ("True", "Applied"), "{name}");
        assert_eq!(status.observed_generation, Some(1));
    }
    let action = reconcile.await.unwrap().expect("reconcile succeeds");
    assert_eq!(action, Action::requeue(RESYNC));
    api.assert_idle();

    let stored = harness
        .store
        .get(demo::TENANT)
        .await
        .unwrap()
        .expect("tenant stored");
    let mut expected = demo::tenant();
    expected.queues.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        stored, expected,
        "the operator stores what `careline config apply` stores"
    );
}

#[tokio::test]
async fn resync_of_an_applied_tenant_writes_nothing() {
    let (harness, mut api) = Harness::start().await;
    let mut r = example();
    let first = tokio::spawn(reconcile_tenant(
        Arc::new(r.tenant.clone()),
        harness.ctx.clone(),
    ));
    serve_reads(&mut api, &r).await;
    r.tenant.status =
        Some(serve_status_patch(&mut api, TENANTS, "demo-health", &r.tenant.clone()).await);
    for queue in &mut r.queues {
        let name = queue.metadata.name.clone().unwrap();
        queue.status = Some(serve_status_patch(&mut api, QUEUES, &name, &queue.clone()).await);
    }
    first.await.unwrap().unwrap();
    let revision = harness.revision(demo::TENANT).await.expect("stored");

    // A second replica (or the periodic resync) sees the same resources.
    let second = tokio::spawn(reconcile_tenant(
        Arc::new(r.tenant.clone()),
        harness.ctx.clone(),
    ));
    serve_reads(&mut api, &r).await;
    second.await.unwrap().unwrap();
    api.assert_idle();
    assert_eq!(
        harness.revision(demo::TENANT).await,
        Some(revision),
        "no new revision"
    );
}

#[tokio::test]
async fn unknown_time_zone_is_reported_on_the_tenant_naming_the_field_and_nothing_is_written() {
    let (harness, mut api) = Harness::start().await;
    let mut r = example();
    r.tenant.spec.time_zone = "Mars/Olympus_Mons".into();
    let reconcile = tokio::spawn(reconcile_tenant(
        Arc::new(r.tenant.clone()),
        harness.ctx.clone(),
    ));

    serve_reads(&mut api, &r).await;
    let status = serve_status_patch(&mut api, TENANTS, "demo-health", &r.tenant).await;
    assert_eq!(ready(&status), ("False", "InvalidTimeZone"));
    let message = &status.ready().unwrap().message;
    assert!(
        message.starts_with("spec.time_zone: unknown time zone \"Mars/Olympus_Mons\""),
        "{message}"
    );
    assert_eq!(status.observed_generation, Some(3));
    for name in [
        "demo-health-general",
        "demo-health-billing",
        "demo-health-clinical",
    ] {
        let queue = r
            .queues
            .iter()
            .find(|q| q.metadata.name.as_deref() == Some(name))
            .unwrap();
        let status = serve_status_patch(&mut api, QUEUES, name, queue).await;
        assert_eq!(ready(&status), ("False", "TenantInvalid"), "{name}");
    }
    reconcile.await.unwrap().unwrap();
    api.assert_idle();
    assert_eq!(
        harness.store.get(demo::TENANT).await.unwrap(),
        None,
        "nothing written"
    );
}

#[tokio::test]
async fn queue_with_a_blank_skill_and_an_unknown_overflow_queue_is_reported_on_that_queue_and_nothing_is_written()
 {
    let (harness, mut api) = Harness::start().await;
    let mut r = example();
    let general = r
        .queues
        .iter_mut()
        .find(|q| q.spec.queue.id == "general")
        .unwrap();
    general.spec.queue.overflow[1].widen_to = Some("dental".into());
    general.spec.queue.skills[0].skill = " ".into();
    let reconcile = tokio::spawn(reconcile_tenant(
        Arc::new(r.tenant.clone()),
        harness.ctx.clone(),
    ));

    serve_reads(&mut api, &r).await;
    let status = serve_status_patch(&mut api, TENANTS, "demo-health", &r.tenant).await;
    assert_eq!(ready(&status), ("False", "InvalidContactQueue"));
    let message = &status.ready().unwrap().message;
    assert!(message.contains("ContactQueue demo-health-general: spec.overflow[1].widen_to: queue \"dental\" is not defined"), "{message}");
    for (name, want) in [
        ("demo-health-general", "InvalidSkills"),
        ("demo-health-billing", "TenantInvalid"),
        ("demo-health-clinical", "TenantInvalid"),
    ] {
        let queue = r
            .queues
            .iter()
            .find(|q| q.metadata.name.as_deref() == Some(name))
            .unwrap();
        let status = serve_status_patch(&mut api, QUEUES, name, queue).await;
        assert_eq!(ready(&status), ("False", want), "{name}");
        if name == "demo-health-general" {
            let message = &status.ready().unwrap().message;
            assert!(
                message.starts_with(
                    "spec.skills[0].skill: skill name must not be empty; spec.overflow[1].widen_to"
                ),
                "{message}"
            );
        }
    }
    reconcile.await.unwrap().unwrap();
    api.assert_idle();
    assert_eq!(
        harness.store.get(demo::TENANT).await.unwrap(),
        None,
        "nothing written"
    );
}

#[tokio::test]
async fn missing_api_key_secret_is_reported_with_every_other_problem_and_nothing_is_written() {
    let (harness, mut api) = Harness::start().await;
    let mut r = example();
    r.secret.metadata.name = Some("someone-elses-secret".into());
    r.tenant.spec.time_zone = "Nowhere/Land".into();
    let reconcile = tokio::spawn(reconcile_tenant(
        Arc::new(r.tenant.clone()),
        harness.ctx.clone(),
    ));

    serve_reads(&mut api, &r).await;
    let status = serve_status_patch(&mut api, TENANTS, "demo-health", &r.tenant).await;
    assert_eq!(ready(&status), ("False", "InvalidApiKeys"));
    let message = &status.ready().unwrap().message;
    assert!(message.starts_with("spec.api_keys[0].secret_key_ref: no non-empty UTF-8 entry \"demo-integration\" in Secret \"demo-health-api-keys\""), "{message}");
    assert!(
        message.contains("; spec.time_zone: unknown time zone"),
        "{message}"
    );
    assert!(!message.contains(demo::API_KEY));
    for name in [
        "demo-health-general",
        "demo-health-billing",
        "demo-health-clinical",
    ] {
        let queue = r
            .queues
            .iter()
            .find(|q| q.metadata.name.as_deref() == Some(name))
            .unwrap();
        serve_status_patch(&mut api, QUEUES, name, queue).await;
    }
    reconcile.await.unwrap().unwrap();
    api.assert_idle();
    assert_eq!(
        harness.store.get(demo::TENANT).await.unwrap(),
        None,
        "nothing written"
    );
}

#[tokio::test]
async fn queue_naming_an_unknown_tenant_is_reported_tenant_not_found() {
    let (harness, mut api) = Harness::start().await;
    let mut queue: ContactQueue = example().queues.remove(0);
    queue.spec.tenant = "ghost-plan".into();
    let reconcile = tokio::spawn(reconcile_queue(
        Arc::new(queue.clone()),
        harness.ctx.clone(),
    ));

    api.expect(Method::GET, &format!("{TENANTS}/ghost-plan"))
        .await
        .not_found();
    let name = queue.metadata.name.clone().unwrap();
    let status = serve_status_patch(&mut api, QUEUES, &name, &queue).await;
    assert_eq!(ready(&status), ("False", "TenantNotFound"));
    assert!(status.ready().unwrap().message.contains("\"ghost-plan\""));
    assert_eq!(reconcile.await.unwrap().unwrap(), Action::requeue(RESYNC));
    api.assert_idle();
}

#[tokio::test]
async fn tenant_without_the_finalizer_gets_it_before_anything_is_written() {
    let (harness, mut api) = Harness::start().await;
    let mut tenant: Tenant = example().tenant;
    tenant.metadata.finalizers = None;
    let reconcile = tokio::spawn(reconcile_tenant(
        Arc::new(tenant.clone()),
        harness.ctx.clone(),
    ));

    let pending = api
        .expect(Method::PATCH, &format!("{TENANTS}/demo-health"))
        .await;
    let ops = pending.body.as_array().expect("a JSON patch");
    assert!(
        ops.iter()
            .any(|op| op["op"] == "add" && op["value"][0] == "careline.io/tenant-config"),
        "{ops:?}"
    );
    pending.ok(&tenant);
    reconcile.await.unwrap().unwrap();
    api.assert_idle();
    assert_eq!(harness.store.get(demo::TENANT).await.unwrap(), None);
}

#[tokio::test]
async fn deleted_tenant_is_removed_from_the_bucket_and_its_queues_report_it_gone() {
    let (harness, mut api) = Harness::start().await;
    harness.store.put(&demo::tenant()).await.unwrap();
    let mut r = example();
    r.tenant.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-11-27T00:00:00Z".parse().unwrap(),
        ));
    let reconcile = tokio::spawn(reconcile_tenant(
        Arc::new(r.tenant.clone()),
        harness.ctx.clone(),
    ));

    api.expect(Method::GET, QUEUES)
        .await
        .ok(&list("ContactQueue", &r.queues));
    for queue in &r.queues {
        let name = queue.metadata.name.clone().unwrap();
        let status = serve_status_patch(&mut api, QUEUES, &name, queue).await;
        assert_eq!(ready(&status), ("False", "TenantNotFound"), "{name}");
    }
    let pending = api
        .expect(Method::PATCH, &format!("{TENANTS}/demo-health"))
        .await;
    let ops = pending.body.as_array().expect("a JSON patch");
    assert!(
        ops.iter()
            .any(|op| op["op"] == "remove" && op["path"] == "/metadata/finalizers/0"),
        "{ops:?}"
    );
    let mut released = r.tenant.clone();
    released.metadata.finalizers = None;
    pending.ok(&released);
    assert_eq!(reconcile.await.unwrap().unwrap(), Action::await_change());
    api.assert_idle();
    assert_eq!(
        harness.store.get(demo::TENANT).await.unwrap(),
        None,
        "configuration removed"
    );
}
