//! The tenant files `loadtest/k6/offers-tenant.sh` writes for the k6 offers runs are
//! valid tenants, and carry the keys `loadtest/k6/offers.js` logs in and calls with.

use std::path::Path;
use std::process::Command;

use careline_domain::{Channel, TenantConfig};
use careline_kit::auth::api_key_sha256_hex;

/// The generator, relative to this crate.
const SCRIPT: &str = "k6/offers-tenant.sh";

/// Runs the generator with `args` (and `env`), returning its standard output.
fn generate(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("offers-tenant.sh runs");
    assert!(
        output.status.success(),
        "offers-tenant.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn parse(text: &str) -> TenantConfig {
    TenantConfig::from_yaml(text).unwrap_or_else(|e| panic!("invalid tenant: {e:?}\n{text}"))
}

/// What offers.js authenticates with: `<tenant>-key-000000000000000` and, for agent
/// `a<i>`, `bench-agent-key-<i>`.
fn assert_offers_js_keys_work(tenant: &TenantConfig, agents: usize) {
    let key = format!("{}-key-000000000000000", tenant.id);
    assert!(
        tenant.api_key(&api_key_sha256_hex(&key)).is_some(),
        "{} does not accept the key offers.js calls with",
        tenant.id
    );
    assert_eq!(tenant.agents.len(), agents);
    for (i, agent) in tenant.agents.iter().enumerate() {
        assert_eq!(agent.id, format!("a{}", i + 1));
        assert_eq!(
            agent.key_sha256,
            api_key_sha256_hex(&format!("bench-agent-key-{}", i + 1))
        );
    }
}

#[test]
fn one_tenant_is_bench_offers_with_its_agents_and_a_30_s_offer_timeout() {
    let tenant = parse(&generate(&["3"], &[]));
    assert_eq!(tenant.id, "bench-offers");
    assert_eq!(tenant.routing.offer_timeout_secs.get(Channel::Chat), 30);
    assert_offers_js_keys_work(&tenant, 3);
}

#[test]
fn many_tenants_are_written_one_file_each_with_keys_of_their_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("many");
    generate(
        &["2", "--tenants", "3", out.to_str().expect("UTF-8 path")],
        &[],
    );
    let mut api_keys = Vec::new();
    for t in 1..=3 {
        let file = out.join(format!("bench-offers-{t}.yaml"));
        let tenant = parse(&std::fs::read_to_string(&file).expect("tenant file written"));
        assert_eq!(tenant.id, format!("bench-offers-{t}"));
        assert_offers_js_keys_work(&tenant, 2);
        api_keys.push(tenant.api_keys[0].sha256.clone());
    }
    api_keys.dedup();
    assert_eq!(
        api_keys.len(),
        3,
        "a bearer key names its tenant: keys must differ"
    );
    assert_eq!(std::fs::read_dir(&out).expect("dir").count(), 3);
}

#[test]
fn the_probe_tenant_takes_its_offer_timeout_from_the_environment() {
    let tenant = parse(&generate(
        &["4", "bench-timeout"],
        &[("OFFER_TIMEOUT_SECS", "1")],
    ));
    assert_eq!(tenant.id, "bench-timeout");
    assert_eq!(tenant.routing.offer_timeout_secs.get(Channel::Chat), 1);
    assert_offers_js_keys_work(&tenant, 4);
}
