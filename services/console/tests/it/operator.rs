//! The platform operator's view across tenants: the operator token sees every
//! tenant's volumes and rates; tenant keys, even admin ones, never do, and a
//! tenant's own KPIs never include another's contacts.

use careline_proto::v1;
use careline_proto::v1::InteractionEventKind as I;
use careline_proto::v1::platform_overview_client::PlatformOverviewClient;
use careline_testkit::Bearer;
use careline_testkit::http::http;
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::{DEMO_KEY, OPERATOR_TOKEN, Platform, TENANT};
use crate::kpis::Log;
use crate::quality::ix_id;

const OTHER: &str = "other-plan";
const OTHER_KEY: &str = "other-plan-key-7Kq2xWv9Rb3mZp";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// An hour ago, as the log's time stamps are written.
fn an_hour_ago(plus_secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(1) + chrono::Duration::seconds(plus_secs))
        .to_rfc3339()
}

async fn overview(
    platform: &Platform,
    credential: &str,
) -> Result<v1::GetTenantOverviewResponse, tonic::Status> {
    let channel = Channel::from_shared(format!("http://{}", platform.grpc()))
        .unwrap()
        .connect()
        .await
        .expect("console reachable");
    PlatformOverviewClient::with_interceptor(channel, Bearer::new(credential))
        .get_tenant_overview(v1::GetTenantOverviewRequest::default())
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn operator_token_sees_every_tenant_and_tenant_keys_never_do() {
    let platform = Platform::start(1).await;
    let other = careline_testkit::demo::second_tenant(
        &careline_testkit::demo::tenant_always_open(),
        OTHER,
        "Other Plan",
        OTHER_KEY,
    );
    platform.add_tenant(&other, OTHER_KEY).await;
    // Demo: two contacts, one answered, one abandoned. Other: one answered.
    let mut demo = Log::default();
    demo.ix(
        &an_hour_ago(0),
        I::Created,
        &ix_id(1),
        "general",
        "",
        "m-1",
        &[],
    );
    demo.ix(
        &an_hour_ago(10),
        I::Assigned,
        &ix_id(1),
        "general",
        "ana",
        "m-1",
        &[],
    );
    demo.ix(
        &an_hour_ago(0),
        I::Created,
        &ix_id(2),
        "general",
        "",
        "m-2",
        &[],
    );
    demo.ix(
        &an_hour_ago(60),
        I::Abandoned,
        &ix_id(2),
        "general",
        "",
        "m-2",
        &[],
    );
    let mut theirs = Log::of(OTHER);
    theirs.ix(
        &an_hour_ago(0),
        I::Created,
        &ix_id(3),
        "general",
        "",
        "m-3",
        &[],
    );
    theirs.ix(
        &an_hour_ago(5),
        I::Assigned,
        &ix_id(3),
        "general",
        "ana",
        "m-3",
        &[],
    );
    platform.publish(&demo.events).await;
    platform.publish(&theirs.events).await;
    platform.settled().await;

    let seen = overview(&platform, OPERATOR_TOKEN)
        .await
        .expect("the operator token opens the overview");
    let rows: Vec<_> = seen
        .tenants
        .iter()
        .map(|t| {
            (
                t.tenant_id.as_str(),
                t.created,
                t.answered,
                t.abandoned,
                t.abandonment_rate,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![(TENANT, 2, 1, 1, 0.5), (OTHER, 1, 1, 0, 0.0)],
        "every tenant, its own volumes and rates"
    );
    assert!(!seen.truncated);

    for key in [DEMO_KEY, OTHER_KEY] {
        let refused = overview(&platform, key)
            .await
            .expect_err("a tenant admin key never reads across tenants");
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(
            refused.message().contains("platform operator token"),
            "{}",
            refused.message()
        );
    }
    for wrong in ["", "not-the-operator-token-at-all"] {
        let refused = overview(&platform, wrong).await.expect_err("no credential");
        assert_eq!(refused.code(), Code::Unauthenticated, "{wrong:?}");
    }

    // A tenant's own KPIs hold its contacts only.
    let mine = platform
        .client(OTHER_KEY)
        .await
        .get_kpis(v1::GetKpisRequest::default())
        .await
        .expect("GetKpis answers")
        .into_inner();
    let created: u64 = mine.periods.iter().map(|p| p.created).sum();
    assert_eq!(
        created, 1,
        "the other tenant sees its one contact, not the demo's"
    );

    // The page: the operator token shows the table; a tenant key is refused.
    let addr = platform.http();
    let (status, _, body) = http(addr, "GET", "/operator?lang=es", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html lang=\"es\">") && body.contains("Token de operación"));
    let (status, _, body) = http(
        addr,
        "POST",
        "/operator",
        &[FORM],
        &format!("token={OPERATOR_TOKEN}&lang=en"),
    )
    .await;
    assert_eq!(status, 200);
    for tenant in [TENANT, OTHER] {
        assert!(
            body.contains(&format!("<span class=\"tenant\">{tenant}</span>")),
            "{body}"
        );
    }
    assert!(
        body.contains("<td>50%</td>"),
        "the demo's abandonment rate: {body}"
    );
    for key in [DEMO_KEY, OTHER_KEY] {
        let (status, _, body) =
            http(addr, "POST", "/operator", &[FORM], &format!("token={key}")).await;
        assert_eq!(status, 403);
        assert!(
            !body.contains("<span class=\"tenant\">"),
            "no tenant row for a tenant key"
        );
        assert!(body.contains("Tenant API keys never do"));
    }
    let (status, _, _) = http(addr, "POST", "/operator", &[FORM], "token=wrong-token").await;
    assert_eq!(status, 401);
}
