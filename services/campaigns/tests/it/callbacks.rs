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
        waiting.push(platform.inbound(member, false).await);
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

/// The state and agent of interaction `id`.
async fn state_of(platform: &Platform, id: &str) -> (i32, String) {
    let ix = platform.interaction(id).await;
    (ix.state, ix.agent_id)
}

#[tokio::test]
async fn a_call_back_keeps_its_place_among_inbound_contacts() {
    let mut callbacks = voice_campaign("callbacks", 1);
    callbacks.callback = true;
    let platform = Platform::start(tenant(vec![callbacks])).await;
    platform.login(&["ana"], AgentStatus::Away).await;
    let mut router = platform.router().await;
    let original = platform.inbound("m-caller", false).await;
    let later = [
        platform.inbound("m-later-1", false).await,
        platform.inbound("m-later-2", false).await,
    ];
    let core = platform.core(platform.clock()).await;
    core.request_callback(TENANT, "m-caller", &original, "+15550001111", 0)
        .await
        .unwrap();
    router
        .abandon(v1::AbandonRequest {
            interaction_id: original.clone(),
        })
        .await
        .unwrap();

    // Inbound contacts wait, yet the call-back is made: it is one of them.
    assert_eq!(core.run_due(TENANT).await.unwrap(), 1);
    let call_back = platform.outbound("callbacks").await;
    assert_eq!(call_back.len(), 1);
    let call_back = &call_back[0];
    assert_eq!(call_back.member_ref, "m-caller");
    assert_eq!(call_back.priority, v1::Priority::Normal as i32);

    platform
        .routing
        .agent_set_state(TENANT, "ana", "s-ana", AgentStatus::Available, "")
        .await
        .unwrap();
    careline_testkit::assert_eventually!(
        state_of(&platform, &call_back.id).await
            == (v1::InteractionState::Offered as i32, "ana".to_owned()),
        "the call-back is offered first, at the member's original place"
    );
    for id in &later {
        assert_eq!(
            state_of(&platform, id).await,
            (v1::InteractionState::Queued as i32, String::new()),
            "contacts that queued after the member wait"
        );
    }
    platform.stop().await;
}
