//! Inbound first: outbound contacts wait below every inbound one, and an
//! urgent inbound contact created while a campaign runs is offered first.

use careline_proto::v1;
use careline_routing::AgentStatus;

use crate::harness::{Platform, TENANT, targets, tenant, voice_campaign};

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
    let normal = platform.inbound("m-normal", false).await;
    let urgent = platform.inbound("m-urgent", true).await;
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
                let ix = platform.interaction(expected).await;
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
