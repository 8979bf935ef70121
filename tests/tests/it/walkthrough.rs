//! The README walkthrough, done with a client nobody here wrote: the real
//! `grpcurl`, which only knows what server reflection tells it.

use std::path::PathBuf;
use std::time::Duration;

use careline_e2e::Platform;
use careline_e2e::tenant::API_KEY;

/// Longest a single grpcurl invocation may take.
const GRPCURL_TIMEOUT: Duration = Duration::from_secs(20);

/// `CARELINE_GRPCURL`, else `<repo>/.careline/bin/grpcurl`, else `grpcurl` on PATH.
fn grpcurl() -> PathBuf {
    if let Some(path) = std::env::var_os("CARELINE_GRPCURL") {
        return PathBuf::from(path);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.careline/bin/grpcurl");
    if local.is_file() {
        return local;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("grpcurl"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "grpcurl not found (CARELINE_GRPCURL, {}, PATH): run `source scripts/lib.sh && ensure_grpcurl`",
            local.display()
        )
    })
}

/// Runs grpcurl with `args`; returns stdout, panicking with stderr on failure.
async fn run(args: &[&str]) -> String {
    let output = grpcurl_output(args).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "grpcurl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs grpcurl with `args`, whatever its outcome.
async fn grpcurl_output(args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(grpcurl());
    command.args(args).kill_on_drop(true);
    tokio::time::timeout(GRPCURL_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("grpcurl {args:?} took longer than {GRPCURL_TIMEOUT:?}"))
        .expect("grpcurl runs")
}

#[tokio::test]
async fn grpcurl_talks_to_the_router_and_presence_via_reflection() {
    let platform = Platform::builder().start().await.expect("platform starts");
    let router = platform.routers[0].addr.to_string();
    let presence = platform.presence[0].addr.to_string();

    let services = run(&["-plaintext", &router, "list"]).await;
    for service in ["careline.v1.Router", "grpc.health.v1.Health"] {
        assert!(
            services.lines().any(|l| l.trim() == service),
            "router lists {service}: {services}"
        );
    }
    let services = run(&["-plaintext", &presence, "list"]).await;
    for service in ["careline.v1.Presence", "grpc.health.v1.Health"] {
        assert!(
            services.lines().any(|l| l.trim() == service),
            "presence lists {service}: {services}"
        );
    }

    let described = run(&[
        "-plaintext",
        &router,
        "describe",
        "careline.v1.Router.CreateInteraction",
    ])
    .await;
    assert!(
        described.contains("rpc CreateInteraction")
            && described.contains(".careline.v1.CreateInteractionRequest")
            && described.contains(".careline.v1.CreateInteractionResponse"),
        "describe shows the method signature: {described}"
    );

    let authorization = format!("authorization: Bearer {API_KEY}");
    let request = r#"{
        "channel": "CHANNEL_EMAIL",
        "queue_id": "general",
        "language": "LANGUAGE_EN",
        "member_ref": "member-0042",
        "idempotency_key": "walkthrough-1",
        "context": {"reason": "claim status", "member_profile": {"plan_name": "Gold PPO"}}
    }"#;
    let created = run(&[
        "-plaintext",
        "-H",
        &authorization,
        "-d",
        request,
        &router,
        "careline.v1.Router/CreateInteraction",
    ])
    .await;
    let created: serde_json::Value = serde_json::from_str(&created)
        .unwrap_or_else(|e| panic!("CreateInteraction prints JSON ({e}): {created}"));
    let id = created["interaction"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the response carries the interaction id: {created}"));
    assert!(id.starts_with("ix_"), "{id}");
    assert_eq!(created["interaction"]["state"], "INTERACTION_STATE_QUEUED");

    let fetched = run(&[
        "-plaintext",
        "-H",
        &authorization,
        "-d",
        &format!(r#"{{"interaction_id": "{id}"}}"#),
        &router,
        "careline.v1.Router/GetInteraction",
    ])
    .await;
    assert!(fetched.contains(id), "GetInteraction returns it: {fetched}");

    for addr in [&router, &presence] {
        let health = run(&["-plaintext", addr, "grpc.health.v1.Health/Check"]).await;
        assert!(health.contains("SERVING"), "{addr} is serving: {health}");
    }
}

#[tokio::test]
async fn grpcurl_reads_the_details_of_an_error_through_reflection() {
    // Closed today whatever the hour: yesterday, today and tomorrow are holidays.
    let mut tenant = careline_e2e::tenant::demo();
    let today = chrono::Utc::now().date_naive();
    tenant.holidays = vec![today.pred_opt().unwrap(), today, today.succ_opt().unwrap()];
    let platform = Platform::builder()
        .tenant(tenant)
        .start()
        .await
        .expect("platform starts");
    let router = platform.routers[0].addr.to_string();
    let authorization = format!("authorization: Bearer {API_KEY}");
    let request = r#"{
        "channel": "CHANNEL_VOICE", "queue_id": "general", "language": "LANGUAGE_ES",
        "member_ref": "member-0042", "idempotency_key": "closed-1",
        "context": {"reason": "no puedo respirar"}
    }"#;
    let output = grpcurl_output(&[
        "-plaintext",
        "-H",
        &authorization,
        "-d",
        request,
        &router,
        "careline.v1.Router/CreateInteraction",
    ])
    .await;
    assert!(!output.status.success(), "refused while closed");
    let printed = String::from_utf8_lossy(&output.stderr);
    assert!(
        !printed.contains("not recognized"),
        "every detail decodes: {printed}"
    );
    for expected in [
        "FailedPrecondition",
        "google.rpc.ErrorInfo",
        "OUTSIDE_BUSINESS_HOURS",
        "google.rpc.LocalizedMessage",
        "llame al 911 ahora",
        "help@demo-health.example",
    ] {
        assert!(printed.contains(expected), "{expected:?} in: {printed}");
    }
}
