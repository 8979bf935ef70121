//! GetAgent and ListAgents, the supervisor view (tenant API key).

use careline_proto::v1;
use tonic::Code;

use crate::harness::{Desk, Presence, TENANT, authed};

#[tokio::test]
async fn agents_never_logged_in_are_offline_with_configured_capacity() {
    let presence = Presence::start().await.unwrap();
    let kim = presence.agent("kim").await.unwrap();
    assert_eq!(
        (kim.tenant_id.as_str(), kim.agent_id.as_str()),
        (TENANT, "kim")
    );
    assert_eq!(kim.state, v1::AgentState::Offline as i32);
    assert!(!kim.logged_in);
    let email = kim
        .load
        .iter()
        .find(|l| l.channel == v1::Channel::Email as i32)
        .unwrap();
    assert_eq!((email.capacity, email.in_use), (5, 0));
    assert_eq!(
        kim.skills,
        [v1::Skill {
            name: "billing".into(),
            proficiency: 9
        }]
    );

    let (_ana, _) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    let ana = presence.agent("ana").await.unwrap();
    assert_eq!(ana.state, v1::AgentState::Available as i32);
    assert!(ana.logged_in);
    assert_eq!(ana.skills.len(), 2, "skills from config: {:?}", ana.skills);
}

#[tokio::test]
async fn another_tenants_agent_is_not_found() {
    let presence = Presence::start().await.unwrap();
    for agent in ["zoe", "nobody"] {
        let status = presence.agent(agent).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{agent}: {status:?}");
        assert!(
            !status.message().contains("other-health"),
            "never reveal other tenants: {}",
            status.message()
        );
    }
    let status = presence.agent("not an id").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut client = presence.client().await.unwrap();
    let status = client
        .get_agent(v1::GetAgentRequest {
            agent_id: "ana".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "no API key: {status:?}"
    );
}

#[tokio::test]
async fn list_agents_pages_and_filters_by_queue() {
    let presence = Presence::start().await.unwrap();
    let mut client = presence.client().await.unwrap();
    let list = |queue: &str, size: u32, token: &str| {
        authed(v1::ListAgentsRequest {
            queue_id: queue.into(),
            page: Some(v1::PageRequest {
                page_size: size,
                page_token: token.into(),
            }),
        })
    };
    let ids = |response: &v1::ListAgentsResponse| {
        response
            .agents
            .iter()
            .map(|a| a.agent_id.clone())
            .collect::<Vec<_>>()
    };

    let first = client
        .list_agents(list("", 2, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&first), ["ana", "kim"]);
    let token = first.page.unwrap().next_page_token;
    assert_eq!(token, "kim");
    let second = client
        .list_agents(list("", 2, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&second), ["luis"]);
    assert_eq!(second.page.unwrap().next_page_token, "");

    let billing = client
        .list_agents(list("billing", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&billing), ["ana", "kim"]);
    let clinical = client
        .list_agents(list("clinical", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&clinical), ["luis"]);

    let status = client.list_agents(list("nope", 0, "")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("known queues"),
        "{}",
        status.message()
    );
    let status = client
        .list_agents(list("", 0, "bad token!"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}
