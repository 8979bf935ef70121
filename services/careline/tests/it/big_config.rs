//! `config check` and `config apply` agree on big and broken tenant files:
//! what `check` accepts, `apply` stores (a hub's plan of 7,500 agents, and one
//! of 20,000); what `apply` refuses, `check` refused with the same message.

use std::path::Path;
use std::process::Output;
use std::time::Instant;

use careline_bus::tenants::TenantStore;
use careline_domain::TenantConfig;
use careline_domain::tenant::{MAX_AGENT_JSON_BYTES, MAX_SETTINGS_JSON_BYTES};
use careline_testkit::{NatsServer, big_tenant};

use crate::cli::{run, text};

/// A generated tenant file, and whether it is valid.
struct Case {
    name: &'static str,
    config: TenantConfig,
    /// Fragments of the message both commands give, when invalid.
    refused_with: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let hub = big_tenant("hub-plan", 7_500, 50);
    let mut huge_agent = big_tenant("huge-agent", 10, 5);
    huge_agent.agents[3].skills = (0..MAX_AGENT_JSON_BYTES / 16)
        .map(|i| (format!("skill-name-{i:05}"), 5))
        .collect();
    let mut long_message = big_tenant("long-message", 10, 5);
    long_message
        .after_hours_message
        .insert("en".into(), "Closed. ".repeat(MAX_SETTINGS_JSON_BYTES / 8));
    let mut unknown_zone = big_tenant("unknown-zone", 7_500, 50);
    unknown_zone.time_zone = "Mars/Olympus_Mons".into();
    vec![
        Case {
            name: "7,500 agents and 50 queues (the hub's plan)",
            config: hub,
            refused_with: &[],
        },
        Case {
            name: "20,000 agents and 50 queues",
            config: big_tenant("bigger-plan", 20_000, 50),
            refused_with: &[],
        },
        Case {
            name: "an agent with thousands of skills",
            config: huge_agent,
            refused_with: &[
                "agents[3]: agent \"agent-00003\" takes ",
                "bytes stored, more than the limit of 16384 for one agent: use fewer or shorter skill names",
            ],
        },
        Case {
            name: "an after-hours message of 256 KiB",
            config: long_message,
            refused_with: &[
                "the tenant without its agents takes ",
                "more than the limit of 262144: use fewer or shorter queues, hours, messages or API keys",
            ],
        },
        Case {
            name: "7,500 agents and an unknown time zone",
            config: unknown_zone,
            refused_with: &["time_zone: unknown time zone \"Mars/Olympus_Mons\""],
        },
    ]
}

/// The problems a refusal lists: stderr without the lines naming the file.
fn problems(output: &Output) -> String {
    let (_, stderr) = text(output);
    stderr
        .lines()
        .filter(|line| !line.contains("tenant.yaml"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn config(args: &[&str], file: &Path, nats_url: Option<&str>) -> Output {
    let mut all = vec!["config"];
    all.extend_from_slice(args);
    all.extend(["-f", file.to_str().unwrap()]);
    if let Some(url) = nats_url {
        all.extend(["--nats-url", url]);
    }
    run(&all).await
}

#[tokio::test]
async fn check_and_apply_agree_on_big_and_broken_tenant_files() {
    let nats = NatsServer::start().await.unwrap();
    let url = nats.url();
    let client = async_nats::connect(&url).await.unwrap();
    let store = TenantStore::open(&async_nats::jetstream::new(client), None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let file = dir.path().join("tenant.yaml");
        let yaml = serde_yaml_ng::to_string(&case.config).unwrap();
        std::fs::write(&file, &yaml).unwrap();

        let started = Instant::now();
        let checked = config(&["check"], &file, None).await;
        let check_took = started.elapsed();
        let started = Instant::now();
        let applied = config(&["apply", "--wait-secs", "0"], &file, Some(&url)).await;
        let apply_took = started.elapsed();
        println!(
            "{}: {} bytes of YAML, check {check_took:?}, apply {apply_took:?}",
            case.name,
            yaml.len()
        );
        let stored = store.get(&case.config.id).await.unwrap();
        if case.refused_with.is_empty() {
            assert!(
                checked.status.success(),
                "{}: {:?}",
                case.name,
                text(&checked)
            );
            assert!(
                applied.status.success(),
                "{}: {:?}",
                case.name,
                text(&applied)
            );
            assert_eq!(stored.as_ref(), Some(&case.config), "{}", case.name);
        } else {
            assert!(
                !checked.status.success(),
                "{}: check accepted it",
                case.name
            );
            assert!(
                !applied.status.success(),
                "{}: apply accepted it",
                case.name
            );
            assert_eq!(stored, None, "{}: something was written", case.name);
            assert_eq!(
                problems(&checked),
                problems(&applied),
                "{}: check and apply differ",
                case.name
            );
            let message = problems(&applied);
            for fragment in case.refused_with {
                assert!(message.contains(fragment), "{}: {message}", case.name);
            }
            assert!(!message.contains("reachable"), "{}: {message}", case.name);
        }
    }
}
