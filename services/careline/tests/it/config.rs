//! `careline config apply|get|check` against a real nats-server: good files are
//! stored and read back; bad files are refused with the line and field to fix,
//! and leave the bucket exactly as it was.

use careline_bus::tenants::{TENANTS_BUCKET, TenantStore};
use careline_domain::TenantConfig;
use careline_testkit::{NatsCluster, NatsServer};

use crate::cli::{demo_file, demo_text, free_port, line_of, replace_line, run, text};

/// Everything a write to the bucket would change.
#[derive(Debug, PartialEq)]
struct BucketState {
    last_sequence: u64,
    messages: u64,
    demo_revision: Option<u64>,
    tenants: Vec<TenantConfig>,
}

async fn store(nats: &NatsServer) -> TenantStore {
    let client = async_nats::connect(nats.url())
        .await
        .expect("connecting to NATS");
    TenantStore::open(&async_nats::jetstream::new(client), None)
        .await
        .expect("opening the tenant bucket")
}

async fn bucket_state(store: &TenantStore, nats: &NatsServer) -> BucketState {
    let client = async_nats::connect(nats.url())
        .await
        .expect("connecting to NATS");
    let state = async_nats::jetstream::new(client)
        .get_stream(format!("KV_{TENANTS_BUCKET}"))
        .await
        .expect("the bucket's stream")
        .info()
        .await
        .expect("the bucket's stream info")
        .state
        .clone();
    let demo_revision = store
        .bucket()
        .entry("demo-health")
        .await
        .expect("reading the demo entry")
        .map(|entry| entry.revision);
    BucketState {
        last_sequence: state.last_sequence,
        messages: state.messages,
        demo_revision,
        tenants: store.list().await.expect("listing tenants"),
    }
}

#[tokio::test]
async fn apply_stores_the_demo_tenant_and_get_prints_it_back() {
    let nats = NatsServer::start().await.unwrap();
    let url = nats.url();
    let demo = demo_file();

    let applied = run(&[
        "config",
        "apply",
        "-f",
        demo.to_str().unwrap(),
        "--nats-url",
        &url,
        "--wait-secs",
        "1",
    ])
    .await;
    let (stdout, stderr) = text(&applied);
    assert!(applied.status.success(), "apply failed: {stderr}");
    assert!(
        stdout.contains("no running service confirmed revision"),
        "says nothing confirmed it: {stdout}"
    );
    let store = store(&nats).await;
    let revision = store
        .bucket()
        .entry("demo-health")
        .await
        .unwrap()
        .expect("demo-health stored")
        .revision;
    assert!(
        stdout.contains(&format!("applied tenant demo-health (revision {revision})")),
        "{stdout}"
    );
    let expected = TenantConfig::from_yaml(&demo_text()).unwrap();
    assert_eq!(
        store.get("demo-health").await.unwrap(),
        Some(expected.clone())
    );

    let got = run(&["config", "get", "demo-health", "--nats-url", &url]).await;
    let (stdout, stderr) = text(&got);
    assert!(got.status.success(), "get failed: {stderr}");
    let printed = TenantConfig::from_yaml(&stdout)
        .unwrap_or_else(|e| panic!("`config get` printed invalid YAML ({e}):\n{stdout}"));
    assert_eq!(printed, expected);
}

#[tokio::test]
async fn get_of_an_unknown_tenant_fails_saying_how_to_add_it() {
    let nats = NatsServer::start().await.unwrap();
    let got = run(&["config", "get", "nobody", "--nats-url", &nats.url()]).await;
    let (_, stderr) = text(&got);
    assert!(!got.status.success());
    assert!(
        stderr.contains("tenant nobody is not configured"),
        "{stderr}"
    );
    assert!(stderr.contains("careline config apply"), "{stderr}");
}

/// Applies the demo, then `bad_text`: the second apply must fail with every
/// `expected` fragment on stderr and leave the bucket untouched.
async fn assert_apply_refused(bad_text: &str, expected: &[String]) {
    let nats = NatsServer::start().await.unwrap();
    let url = nats.url();
    let demo = demo_file();
    let applied = run(&[
        "config",
        "apply",
        "-f",
        demo.to_str().unwrap(),
        "--nats-url",
        &url,
        "--wait-secs",
        "0",
    ])
    .await;
    assert!(applied.status.success(), "{:?}", text(&applied));
    let store = store(&nats).await;
    let before = bucket_state(&store, &nats).await;
    assert_eq!(before.tenants.len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("tenant.yaml");
    std::fs::write(&bad, bad_text).unwrap();
    let refused = run(&[
        "config",
        "apply",
        "-f",
        bad.to_str().unwrap(),
        "--nats-url",
        &url,
    ])
    .await;
    let (stdout, stderr) = text(&refused);

    assert!(
        !refused.status.success(),
        "apply accepted a bad file: {stdout}"
    );
    assert!(!stdout.contains("applied"), "{stdout}");
    for fragment in expected {
        assert!(
            stderr.contains(fragment.as_str()),
            "stderr lacks {fragment:?}:\n{stderr}"
        );
    }
    assert_eq!(
        bucket_state(&store, &nats).await,
        before,
        "the bucket changed"
    );
}

#[tokio::test]
async fn apply_refuses_an_unknown_time_zone_naming_line_and_field() {
    let bad = replace_line(
        &demo_text(),
        "time_zone: America/Denver",
        "time_zone: America/Gotham",
    );
    let line = line_of(&bad, "time_zone: America/Gotham", 1);
    assert_apply_refused(
        &bad,
        &[format!(
            "line {line}: time_zone: unknown time zone \"America/Gotham\""
        )],
    )
    .await;
}

#[tokio::test]
async fn apply_refuses_a_duplicate_queue_id_naming_both_lines() {
    let duplicate = "  - id: general\n    name: Member services again\n    skills:\n      \
                     - { skill: member_services, min_proficiency: 3 }\n    service_level_secs: 30\n\
                     agents:";
    let bad = replace_line(&demo_text(), "agents:", duplicate);
    let first = line_of(&bad, "  - id: general", 1);
    let second = line_of(&bad, "  - id: general", 2);
    assert_apply_refused(
        &bad,
        &[format!(
            "line {second}: queues[3].id: duplicate queue id \"general\" (first defined on line {first})"
        )],
    )
    .await;
}

#[tokio::test]
async fn apply_refuses_a_bad_tenant_id_naming_line_and_field() {
    let bad = replace_line(&demo_text(), "id: demo-health", "id: Demo Health");
    let line = line_of(&bad, "id: Demo Health", 1);
    assert_apply_refused(
        &bad,
        &[format!(
            "line {line}: id: tenant id \"Demo Health\" is invalid"
        )],
    )
    .await;
}

#[tokio::test]
async fn apply_refuses_an_unclosed_bracket_naming_line_and_field() {
    let bad = replace_line(&demo_text(), "languages: [en, es]", "languages: [en, es");
    let line = line_of(&bad, "languages: [en, es", 1);
    assert_apply_refused(&bad, &[format!("line {line}: languages[1]: ")]).await;
}

#[tokio::test]
async fn apply_refuses_bad_indentation_quoting_the_line() {
    let misindented = "     close: \"19:00\"";
    let bad = replace_line(&demo_text(), "    close: \"19:00\"", misindented);
    let line = line_of(&bad, misindented, 1);
    // A syntax error has no field path; the quoted source line shows which key is wrong.
    assert_apply_refused(
        &bad,
        &[
            format!("line {line}: did not find expected key"),
            format!("{line:>4} | {misindented}"),
        ],
    )
    .await;
}

#[tokio::test]
async fn apply_without_a_nats_server_says_to_start_careline_up() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let demo = demo_file();
    let applied = run(&[
        "config",
        "apply",
        "-f",
        demo.to_str().unwrap(),
        "--nats-url",
        &url,
    ])
    .await;
    let (_, stderr) = text(&applied);
    assert!(!applied.status.success());
    assert!(
        stderr.contains(&format!("cannot reach NATS at {url}")),
        "{stderr}"
    );
    assert!(stderr.contains("`careline up`"), "{stderr}");
    assert!(stderr.contains("--nats-url"), "{stderr}");
}

#[tokio::test]
async fn apply_to_a_nats_cluster_keeps_the_bucket_on_the_replicas_asked_for() {
    let cluster = NatsCluster::start(3).await.expect("a 3-node NATS cluster");
    let urls = cluster.url();
    let demo = demo_file();
    let refused = run(&[
        "config",
        "apply",
        "-f",
        demo.to_str().unwrap(),
        "--nats-url",
        &urls,
        "--nats-replicas",
        "0",
    ])
    .await;
    let (_, stderr) = text(&refused);
    assert!(!refused.status.success(), "0 replicas accepted");
    assert!(stderr.contains("--nats-replicas"), "{stderr}");

    let applied = run(&[
        "config",
        "apply",
        "-f",
        demo.to_str().unwrap(),
        "--nats-url",
        &urls,
        "--nats-replicas",
        "3",
        "--wait-secs",
        "0",
    ])
    .await;
    let (stdout, stderr) = text(&applied);
    assert!(applied.status.success(), "{stdout}{stderr}");
    let client = async_nats::connect(cluster.urls())
        .await
        .expect("connecting");
    let mut stream = async_nats::jetstream::new(client)
        .get_stream(format!("KV_{TENANTS_BUCKET}"))
        .await
        .expect("the tenant bucket");
    let info = stream.info().await.expect("its info");
    assert_eq!(info.config.num_replicas, 3);
}

#[tokio::test]
async fn check_accepts_the_demo_file() {
    let demo = demo_file();
    let checked = run(&["config", "check", "-f", demo.to_str().unwrap()]).await;
    let (stdout, stderr) = text(&checked);
    assert!(checked.status.success(), "{stderr}");
    assert!(stdout.contains("tenant demo-health is valid"), "{stdout}");
}

#[tokio::test]
async fn check_refuses_a_bad_file_naming_line_and_field() {
    let bad = replace_line(
        &demo_text(),
        "time_zone: America/Denver",
        "time_zone: Mars/Olympus",
    );
    let line = line_of(&bad, "time_zone: Mars/Olympus", 1);
    let (stderr, file) = check_refused(&bad).await;
    assert!(stderr.contains(&format!("{file} is invalid")), "{stderr}");
    assert!(
        stderr.contains(&format!("line {line}: time_zone: ")),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_refuses_a_tenant_template_that_does_not_compile_naming_tenant_template_and_line() {
    let bad = format!(
        "{}email:\n  templates:\n    after_hours:\n      es:\n        subject: Cerrado\n        text: |\n          Hola,\n          {{{{ portal_url }}\n",
        demo_text()
    );
    let line = line_of(&bad, "        text: |", 1);
    let (stderr, _) = check_refused(&bad).await;
    assert!(
        stderr.contains(&format!(
            "line {line}: email.templates.after_hours.es.text: tenant demo-health's after_hours \
             template (es text) does not compile at line 2 of the template: "
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_refuses_a_topic_rule_naming_an_unknown_queue() {
    let bad = replace_line(
        &demo_text(),
        "    - { topic: billing, queue: billing }",
        "    - { topic: billing, queue: accounts }",
    );
    let line = line_of(&bad, "    - { topic: billing, queue: accounts }", 1);
    let (stderr, _) = check_refused(&bad).await;
    assert!(
        stderr.contains(&format!(
            "line {line}: routing.topics[1].queue: queue \"accounts\" is not defined under queues \
             (known queues: general, billing, clinical)"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_reports_every_problem_in_the_file_at_once() {
    // Four kinds of problem: a bad value, an unknown field, a wrong type and a
    // duplicate id; serde alone would stop at the first one it reads.
    let mut bad = demo_text();
    for (from, to) in [
        ("time_zone: America/Denver", "time_zone: Mars/Olympus"),
        ("  wrap_up_secs: 30", "  wrap_up_seconds: 30"),
        ("  heartbeat_ttl_secs: 15", "  heartbeat_ttl_secs: soon"),
        ("  - id: billing", "  - id: general"),
    ] {
        bad = replace_line(&bad, from, to);
    }
    let expected = [
        (
            line_of(&bad, "time_zone: Mars/Olympus", 1),
            "time_zone: unknown time zone",
        ),
        (
            line_of(&bad, "  wrap_up_seconds: 30", 1),
            "routing.wrap_up_seconds: unknown field `wrap_up_seconds`",
        ),
        (
            line_of(&bad, "  heartbeat_ttl_secs: soon", 1),
            "routing.heartbeat_ttl_secs: invalid type: string \"soon\"",
        ),
        (
            line_of(&bad, "  - id: general", 2),
            "queues[1].id: duplicate queue id \"general\"",
        ),
    ];
    let (stderr, _) = check_refused(&bad).await;
    let reported: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    for (line, problem) in expected {
        let want = format!("line {line}: {problem}");
        assert!(
            reported.iter().any(|l| l.starts_with(&want)),
            "{want:?} missing from:\n{stderr}"
        );
    }
    // The widened overflow target `billing` is gone too: that is a fifth, real problem.
    assert!(reported.len() >= 4, "{stderr}");
}

/// Runs `careline config check` on `tenant_file`'s text (written to a file), asserts that it
/// is refused, and returns its stderr and the file's path.
async fn check_refused(tenant_file: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenant.yaml");
    std::fs::write(&file, tenant_file).unwrap();
    let file = file.display().to_string();
    let checked = run(&["config", "check", "-f", &file]).await;
    let (stdout, stderr) = text(&checked);
    assert!(!checked.status.success(), "{stdout}");
    (stderr, file)
}

/// A router serving on a loopback port over `sandbox`'s Redis and NATS.
struct RunningRouter {
    addr: std::net::SocketAddr,
    shutdown: careline_kit::Shutdown,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningRouter {
    async fn start(sandbox: &careline_testkit::Sandbox) -> RunningRouter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = careline_kit::Shutdown::new();
        let config = careline_router::RouterConfig::with_common(careline_kit::CommonConfig {
            redis_url: sandbox.redis_url(),
            nats_url: sandbox.nats_url(),
            ..careline_kit::CommonConfig::default()
        });
        let served = tokio::spawn(careline_router::serve(config, listener, shutdown.clone()));
        RunningRouter {
            addr,
            shutdown,
            served,
        }
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.served.await.unwrap().unwrap();
    }
}

/// A create of an email contact in the demo tenant's general queue.
fn email_contact(key: &str) -> careline_proto::v1::CreateInteractionRequest {
    careline_proto::v1::CreateInteractionRequest {
        channel: careline_proto::v1::Channel::Email as i32,
        queue_id: "general".into(),
        language: careline_proto::v1::Language::En as i32,
        member_ref: "member-1".into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn apply_returns_once_a_running_router_routes_with_the_new_tenant() {
    let sandbox = careline_testkit::Sandbox::start().await.unwrap();
    let router = RunningRouter::start(&sandbox).await;

    let demo = demo_file();
    let applied = run(&[
        "config",
        "apply",
        "-f",
        demo.to_str().unwrap(),
        "--nats-url",
        &sandbox.nats_url(),
    ])
    .await;
    let (stdout, stderr) = text(&applied);
    assert!(applied.status.success(), "apply failed: {stderr}");
    assert!(
        stdout.contains("the running services route with revision"),
        "{stdout}"
    );
    // No retry: once apply has returned, the tenant's first create works.
    let mut client =
        careline_testkit::router::router_client(router.addr, careline_testkit::demo::API_KEY).await;
    let created = client.create_interaction(email_contact("first")).await;
    assert!(created.is_ok(), "first create after apply: {created:?}");
    router.stop().await;
}

#[tokio::test]
async fn delete_refuses_a_tenant_with_open_contacts_unless_forced_then_removes_its_keys_and_state()
{
    let sandbox = careline_testkit::Sandbox::start().await.unwrap();
    let router = RunningRouter::start(&sandbox).await;
    let (nats_url, redis_url) = (sandbox.nats_url(), sandbox.redis_url());
    let demo = demo_file();
    let applied = run(&[
        "config",
        "apply",
        "-f",
        demo.to_str().unwrap(),
        "--nats-url",
        &nats_url,
    ])
    .await;
    assert!(applied.status.success(), "{:?}", text(&applied));
    let mut client =
        careline_testkit::router::router_client(router.addr, careline_testkit::demo::API_KEY).await;
    client
        .create_interaction(email_contact("still-open"))
        .await
        .expect("created");
    let mut redis = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg("cl:{other-plan}:settings")
        .arg("kept")
        .query_async(&mut redis)
        .await
        .unwrap();
    let delete = |force: bool| {
        let mut args = vec![
            "config",
            "delete",
            "demo-health",
            "--nats-url",
            &nats_url,
            "--redis-url",
            &redis_url,
        ];
        if force {
            args.push("--force");
        }
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move { run(&args.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };

    let refused = delete(false).await;
    let (_, stderr) = text(&refused);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("tenant demo-health has 1 open contacts") && stderr.contains("--force"),
        "{stderr}"
    );
    let still = client
        .create_interaction(email_contact("after-refusal"))
        .await;
    assert!(still.is_ok(), "a refused delete changes nothing: {still:?}");

    let deleted = delete(true).await;
    let (stdout, stderr) = text(&deleted);
    assert!(deleted.status.success(), "{stderr}");
    assert!(stdout.contains("deleted tenant demo-health"), "{stdout}");
    let status = client
        .create_interaction(email_contact("after-delete"))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Unauthenticated,
        "its key no longer works"
    );
    router.stop().await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg("*{demo-health}*")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(left.is_empty(), "the tenant's keys are gone: {left:?}");
    let kept: Option<String> = redis::cmd("GET")
        .arg("cl:{other-plan}:settings")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("kept"), "another tenant's keys stay");
}
