//! Transfers to an agent: refused with the reason when that agent could never
//! take the contact, so no member waits for someone who cannot answer.

use careline_proto::v1;
use careline_routing::{AgentStatus, RoutingStore};
use tonic::Code;

use crate::harness::{DEMO_KEY, Platform, create, demo};

#[tokio::test]
async fn a_transfer_to_an_agent_who_cannot_take_the_contact_is_refused_with_the_reason() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let store = RoutingStore::connect(&platform.sandbox.redis_url())
        .await
        .unwrap();
    store
        .agent_login(&demo(), "ana", "s-ana", AgentStatus::Available)
        .await
        .unwrap();
    let mut spanish_chat = create("general", v1::Channel::Chat, "es-chat");
    spanish_chat.language = v1::Language::Es as i32;
    let ix = client
        .create_interaction(spanish_chat)
        .await
        .unwrap()
        .into_inner()
        .interaction
        .unwrap();
    assert_eq!(ix.agent_id, "ana");
    client
        .accept_offer(v1::AcceptOfferRequest {
            offer_id: ix.offer_id.clone(),
            agent_id: "ana".into(),
        })
        .await
        .unwrap();
    let transfer = |to: &str| v1::TransferRequest {
        interaction_id: ix.id.clone(),
        agent_id: "ana".into(),
        notes: String::new(),
        target: Some(v1::transfer_request::Target::ToAgentId(to.into())),
    };

    let cases = [
        ("kim", Code::FailedPrecondition, "kim\" does not speak es"),
        ("nobody", Code::FailedPrecondition, "unknown or removed"),
        ("ana", Code::InvalidArgument, "cannot transfer to itself"),
        ("bad agent!", Code::InvalidArgument, "to_agent_id"),
    ];
    for (to, code, why) in cases {
        let refused = client.transfer(transfer(to)).await.unwrap_err();
        assert_eq!(refused.code(), code, "to {to}: {refused:?}");
        assert!(refused.message().contains(why), "to {to}: {refused:?}");
    }
    let unchanged = client
        .get_interaction(v1::GetInteractionRequest {
            interaction_id: ix.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.state, v1::InteractionState::Assigned as i32);
    assert_eq!(
        unchanged.agent_id, "ana",
        "still with ana after the refusals"
    );

    // luis speaks Spanish: the transfer goes through and waits for him.
    let transferred = client
        .transfer(transfer("luis"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(transferred.state, v1::InteractionState::Queued as i32);
    let stats = client
        .get_queue_stats(v1::GetQueueStatsRequest {
            queue_id: "general".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stats.queues[0].waiting, 1,
        "waiting for luis, counted in its queue"
    );
    platform.stop().await;
}
