//! Several replicas at once: each target is attempted once, however many
//! replicas claim and however often a batch is sent; the API's scopes and errors.

use std::collections::{BTreeMap, HashSet};

use careline_campaigns::CampaignStore;
use careline_campaigns::store::NewTarget;
use careline_proto::v1;
use careline_testkit::Sandbox;

use crate::harness::{DEMO_KEY, IVR_KEY, Platform, TENANT, targets, tenant, voice_campaign};

#[tokio::test]
async fn concurrent_claims_over_one_due_set_hand_out_each_target_once() {
    let sandbox = Sandbox::start().await.expect("redis starts");
    let store = CampaignStore::new(sandbox.redis().await.unwrap());
    let now = chrono::Utc::now().timestamp_millis();
    for i in 0..200 {
        let member_ref = format!("claim-{i}");
        let target = NewTarget {
            member_ref: &member_ref,
            contact_hint: "",
            language: "",
            high: i % 3 == 0,
            priority: "normal",
            due_ms: now,
            queued_since_ms: 0,
        };
        assert!(store.add_target(TENANT, "race", &target).await.unwrap());
    }
    let claimers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .claim_due(TENANT, "race", now, 10_000, 100_000, 7)
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed);
            }
        })
    });
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 200, "every target claimed");
    assert_eq!(distinct.len(), 200, "no target claimed twice");
}

#[tokio::test]
async fn two_replicas_with_the_same_targets_attempt_each_target_once() {
    let mut platform = Platform::start(tenant(vec![voice_campaign("blitz", 1_000)])).await;
    platform.login_floor().await;
    platform.start_replica().await;
    platform.start_replica().await;
    let (mut first, mut second) = (
        platform.client(0, DEMO_KEY).await,
        platform.client(1, DEMO_KEY).await,
    );
    // Both replicas get the same 30 targets at once (two importers, a retried batch).
    let request = v1::AddTargetsRequest {
        campaign_code: "blitz".into(),
        targets: targets("twin", 30),
    };
    let (a, b) = tokio::join!(
        first.add_targets(request.clone()),
        second.add_targets(request.clone())
    );
    let (a, b) = (a.unwrap().into_inner(), b.unwrap().into_inner());
    assert_eq!(a.added + b.added, 30);
    assert_eq!(a.known + b.known, 30);

    // The test is the tenant's telephony: each outbound contact it sees is
    // reported reached, which frees room for the next.
    let mut reported = HashSet::new();
    careline_testkit::assert_eventually!(
        within: std::time::Duration::from_secs(60),
        {
            for ix in platform.outbound("blitz").await {
                if reported.insert(ix.member_ref.clone()) {
                    first
                        .report_attempt_result(v1::ReportAttemptResultRequest {
                            campaign_code: "blitz".into(),
                            member_ref: ix.member_ref.clone(),
                            result: v1::AttemptResult::Reached as i32,
                        })
                        .await
                        .expect("result recorded");
                }
            }
            reported.len() == 30
        },
        "every target attempted and reported"
    );
    let mut per_member: BTreeMap<String, usize> = BTreeMap::new();
    for ix in platform.outbound("blitz").await {
        *per_member.entry(ix.member_ref).or_default() += 1;
    }
    assert_eq!(per_member.len(), 30);
    assert!(per_member.values().all(|n| *n == 1), "{per_member:?}");
    let stats = second
        .get_campaign_stats(v1::GetCampaignStatsRequest {
            campaign_code: "blitz".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.targets, 30);
    assert_eq!(stats.attempts, 30);
    assert_eq!(stats.results.get("reached"), Some(&30));
    assert_eq!((stats.due, stats.in_progress), (0, 0));
    platform.stop().await;
}

#[tokio::test]
async fn each_call_needs_its_scope_and_bad_input_is_refused_naming_the_field() {
    let mut platform = Platform::start(tenant(vec![voice_campaign("blitz", 10)])).await;
    platform.start_replica().await;
    let mut ivr = platform.client(0, IVR_KEY).await;
    let error = ivr
        .get_campaign_stats(v1::GetCampaignStatsRequest {
            campaign_code: "blitz".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::PermissionDenied);
    assert!(
        error.message().contains("supervisor"),
        "{}",
        error.message()
    );
    let error = ivr
        .report_attempt_result(v1::ReportAttemptResultRequest {
            campaign_code: "blitz".into(),
            member_ref: "m-1".into(),
            result: v1::AttemptResult::Reached as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::PermissionDenied);
    // The IVR may add targets and suppress members.
    let mut bad = targets("bad", 3);
    bad[1].member_ref = " ".into();
    let error = ivr
        .add_targets(v1::AddTargetsRequest {
            campaign_code: "blitz".into(),
            targets: bad,
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().contains("targets[1]: member_ref"),
        "{}",
        error.message()
    );
    let error = ivr
        .add_targets(v1::AddTargetsRequest {
            campaign_code: "no-such".into(),
            targets: targets("x", 1),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::NotFound);
    assert!(
        error.message().contains("outreach.campaigns"),
        "{}",
        error.message()
    );
    let mut admin = platform.client(0, DEMO_KEY).await;
    let error = admin
        .report_attempt_result(v1::ReportAttemptResultRequest {
            campaign_code: "blitz".into(),
            member_ref: "never-added".into(),
            result: v1::AttemptResult::Busy as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    let error = admin
        .request_callback(v1::RequestCallbackRequest {
            member_ref: "m-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    assert!(
        error.message().contains("callback: true"),
        "{}",
        error.message()
    );
    ivr.suppress_member(v1::SuppressMemberRequest {
        member_ref: "m-1".into(),
    })
    .await
    .expect("intake may suppress a member");
    platform.stop().await;
}
