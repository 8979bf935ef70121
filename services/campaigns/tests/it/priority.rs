//! Inbound first: outbound contacts wait below every inbound one, and an
//! urgent inbound contact created while a campaign runs is offered first.

use careline_proto::v1;
use careline_routing::AgentStatus;

use crate::harness::{Platform, TENANT, targets, tenant, voice_campaign};

async fn state_of(platform: &Platform, id: &str) -> v1::Interaction {
    platform
        .router()
        .await
        .get_interaction(v1::GetInteractionRequest {
            interaction_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn inbound(platform: &Platform, member: &str, urgent: bool) -> String {
    platform
        .router()
        .await
        .create_interaction(v1::CreateInteractionRequest {
            channel: v1::Channel::Voice as i32,
            queue_id: "general".into(),
            member_ref: member.into(),
            urgent,
            idempotency_key: format!("inbound-{member}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .interaction
        .unwrap()
        .id
}

#[tokio::test]
async fn urgent_inbound_created_while_a_campaign_runs_is_offered_before_waiting_outbound() {
    let platform = Platform::start(tenant(vec![voice_campaign("blitz", 10)])).await;
    // Two agents logged in but away for a moment: the campaign may use them
    // (share 100%), so two outbound contacts wait in the queue.
    platform.login(&["ana", "luis"], AgentStatus::Away).await;
    let core = platform.core(platform.clock()).await;
    core.add_targets(TENANT, "blitz", &targets("out", 5))
        .await
        .unwrap();
    assert_eq!(core.run_due(TENANT).await.unwrap(), 2);
    let outbound = platform.outbound("blitz").await;
    assert_eq!(outbound.len(), 2);
    assert!(
        outbound
            .iter()
            .all(|ix| ix.priority == v1::Priority::Low as i32
                && ix.state == v1::InteractionState::Queued as i32)
    );

    // Then a normal and an urgent inbound call arrive, in that order.
    let normal = inbound(&platform, "m-normal", false).await;
    let urgent = inbound(&platform, "m-urgent", true).await;
    // Inbound is waiting: the campaign starts nothing more.
    assert_eq!(core.run_due(TENANT).await.unwrap(), 0);

    for (agent, expected) in [("ana", &urgent), ("luis", &normal)] {
        platform
            .routing
            .agent_set_state(
                TENANT,
                agent,
                &format!("s-{agent}"),
                AgentStatus::Available,
                "",
            )
            .await
            .unwrap();
        careline_testkit::assert_eventually!(
            {
                let ix = state_of(&platform, expected).await;
                ix.state == v1::InteractionState::Offered as i32 && ix.agent_id == agent
            },
            "{agent} is offered the inbound call first"
        );
    }
    for ix in platform.outbound("blitz").await {
        assert_eq!(
            ix.state,
            v1::InteractionState::Queued as i32,
            "outbound still waits"
        );
    }
    platform.stop().await;
}
