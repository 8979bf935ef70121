//! Call-backs: made in the order the members first queued.

use careline_proto::v1;
use careline_routing::AgentStatus;

use crate::harness::{Platform, TENANT, tenant, voice_campaign};

#[tokio::test]
async fn call_backs_are_made_in_the_order_the_members_first_queued() {
    let mut callbacks = voice_campaign("callbacks", 1);
    callbacks.callback = true;
    let platform = Platform::start(tenant(vec![callbacks])).await;
    platform.login(&["ana"], AgentStatus::Away).await;
    let mut router = platform.router().await;
    let mut waiting = Vec::new();
    for member in ["m-first", "m-second"] {
        let ix = router
            .create_interaction(v1::CreateInteractionRequest {
                channel: v1::Channel::Voice as i32,
                queue_id: "general".into(),
                member_ref: member.into(),
                idempotency_key: format!("queued-{member}"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .interaction
            .unwrap();
        waiting.push(ix.id);
    }
    let core = platform.core(platform.clock()).await;
    // The second caller asks first; then the first one; both hang up.
    for (member, id) in [("m-second", &waiting[1]), ("m-first", &waiting[0])] {
        let (code, added) = core
            .request_callback(TENANT, member, id, "+15550001111", 0)
            .await
            .unwrap();
        assert_eq!((code.as_str(), added), ("callbacks", true));
        router
            .abandon(v1::AbandonRequest {
                interaction_id: id.clone(),
            })
            .await
            .unwrap();
    }
    let (_, again) = core
        .request_callback(TENANT, "m-first", &waiting[0], "", 0)
        .await
        .unwrap();
    assert!(!again, "one call-back per member");
    let error = core
        .request_callback(TENANT, "m-first", &waiting[1], "", 0)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("interaction_id"), "{error}");

    assert_eq!(core.run_due(TENANT).await.unwrap(), 1);
    let first: Vec<String> = platform
        .outbound("callbacks")
        .await
        .into_iter()
        .map(|ix| ix.member_ref)
        .collect();
    assert_eq!(
        first,
        ["m-first"],
        "the member who queued first is called first"
    );
    core.report(
        TENANT,
        "callbacks",
        "m-first",
        careline_domain::campaign::AttemptResult::Reached,
    )
    .await
    .unwrap();
    assert_eq!(core.run_due(TENANT).await.unwrap(), 1);
    let members: Vec<String> = platform
        .outbound("callbacks")
        .await
        .into_iter()
        .map(|ix| ix.member_ref)
        .collect();
    assert!(members.contains(&"m-second".to_owned()), "{members:?}");
    platform.stop().await;
}
