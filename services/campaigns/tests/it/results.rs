//! Attempt results: retries after no answer and busy, the suppression ledger
//! (opted out, reached recently, in an open interaction), attribution.

use careline_campaigns::Campaigns;
use careline_domain::campaign::AttemptResult;
use careline_proto::v1;
use redis::AsyncCommands;

use crate::harness::{DEMO_KEY, Platform, TENANT, targets, tenant, voice_campaign};

async fn attempts_of(platform: &Platform, code: &str, member: &str) -> Vec<String> {
    platform
        .outbound(code)
        .await
        .into_iter()
        .filter(|ix| ix.member_ref == member)
        .map(|ix| ix.context.unwrap().attributes["attempt"].clone())
        .collect()
}

async fn add(core: &Campaigns, code: &str, member: &str) {
    let mut target = targets(member, 1);
    target[0].member_ref = member.into();
    core.add_targets(TENANT, code, &target).await.unwrap();
}

#[tokio::test]
async fn no_answer_and_busy_are_retried_after_the_spacing_until_the_attempts_are_used() {
    let platform = Platform::start(tenant(vec![voice_campaign("retry", 10)])).await;
    platform.login_floor().await;
    let core = platform.core(platform.clock()).await;
    add(&core, "retry", "m-retry").await;
    core.run_due(TENANT).await.unwrap();
    assert_eq!(attempts_of(&platform, "retry", "m-retry").await, ["1"]);

    let (next_ms, state) = core
        .report(TENANT, "retry", "m-retry", AttemptResult::NoAnswer)
        .await
        .unwrap();
    assert_eq!(state, "due");
    assert!(next_ms > 0);
    // Within the spacing nothing happens.
    core.run_due(TENANT).await.unwrap();
    assert_eq!(core.stats(TENANT, "retry").await.unwrap().attempts, 1);

    platform.advance_ms(61_000);
    core.run_due(TENANT).await.unwrap();
    let mut attempts = attempts_of(&platform, "retry", "m-retry").await;
    attempts.sort();
    assert_eq!(attempts, ["1", "2"]);
    let (_, state) = core
        .report(TENANT, "retry", "m-retry", AttemptResult::Busy)
        .await
        .unwrap();
    assert_eq!(
        state, "exhausted",
        "two attempts were all the policy allows"
    );
    let error = core
        .report(TENANT, "retry", "m-retry", AttemptResult::Busy)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("no attempt in progress"),
        "{error}"
    );
    let stats = core.stats(TENANT, "retry").await.unwrap();
    assert_eq!(stats.attempts, 2);
    assert_eq!(stats.results.get("no_answer"), Some(&1));
    assert_eq!(stats.results.get("busy"), Some(&1));
    platform.stop().await;
}

#[tokio::test]
async fn opted_out_and_recently_reached_members_are_not_contacted_by_any_campaign() {
    let platform = Platform::start(tenant(vec![
        voice_campaign("first", 10),
        voice_campaign("second", 10),
    ]))
    .await;
    platform.login_floor().await;
    let core = platform.core(platform.clock()).await;
    core.suppress(TENANT, "m-out").await.unwrap();
    add(&core, "first", "m-out").await;
    add(&core, "first", "m-reached").await;
    core.run_due(TENANT).await.unwrap();
    assert!(attempts_of(&platform, "first", "m-out").await.is_empty());
    core.report(TENANT, "first", "m-reached", AttemptResult::Reached)
        .await
        .unwrap();

    add(&core, "second", "m-reached").await;
    add(&core, "second", "m-fresh").await;
    core.run_due(TENANT).await.unwrap();
    assert!(
        attempts_of(&platform, "second", "m-reached")
            .await
            .is_empty()
    );
    assert_eq!(attempts_of(&platform, "second", "m-fresh").await, ["1"]);
    let first = core.stats(TENANT, "first").await.unwrap();
    assert_eq!(first.results.get("suppressed_opted_out"), Some(&1));
    let second = core.stats(TENANT, "second").await.unwrap();
    assert_eq!(second.results.get("suppressed_reached_recently"), Some(&1));
    platform.stop().await;
}

#[tokio::test]
async fn a_member_in_an_open_interaction_is_called_only_after_it_ends_and_resolutions_roll_up() {
    let mut platform = Platform::start(tenant(vec![voice_campaign("busy", 10)])).await;
    platform.login_floor().await;
    platform.start_replica().await;
    let mut router = platform.router().await;
    let inbound = router
        .create_interaction(v1::CreateInteractionRequest {
            channel: v1::Channel::Voice as i32,
            queue_id: "general".into(),
            member_ref: "m-busy".into(),
            idempotency_key: "inbound-busy".into(),
            context: Some(v1::InteractionContext {
                // An inbound call from the campaign's mailer number.
                attributes: [("campaign".to_owned(), "busy".to_owned())].into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .interaction
        .unwrap();
    // The replica has seen the member's open interaction.
    let open_key = format!(
        "cl:{{{TENANT}}}:cmp:open:{}",
        careline_campaigns::store::member_key(TENANT, "m-busy")
    );
    let mut redis = platform.sandbox.redis().await.unwrap();
    careline_testkit::assert_eventually!(
        redis.exists::<_, bool>(&open_key).await.unwrap()
            && redis.scard::<_, u64>(&open_key).await.unwrap() == 1,
        "the open interaction is known"
    );
    let mut client = platform.client(0, DEMO_KEY).await;
    let mut target = targets("m-busy", 1);
    target[0].member_ref = "m-busy".into();
    client
        .add_targets(v1::AddTargetsRequest {
            campaign_code: "busy".into(),
            targets: target,
        })
        .await
        .unwrap();
    let stats = || {
        let mut client = client.clone();
        async move {
            client
                .get_campaign_stats(v1::GetCampaignStatsRequest {
                    campaign_code: "busy".into(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    careline_testkit::assert_eventually!(
        stats().await.results.get("deferred_open_interaction") == Some(&1),
        "the target waits while the member is in a contact"
    );
    assert_eq!(stats().await.attempts, 0);

    // The inbound call is answered and resolved with an outcome: it counts
    // for the campaign whose code it carried.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let inbound = loop {
        let ix = router
            .get_interaction(v1::GetInteractionRequest {
                interaction_id: inbound.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if ix.state == v1::InteractionState::Offered as i32 {
            break ix;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the inbound call is offered to an agent"
        );
        tokio::time::sleep(careline_testkit::POLL_INTERVAL).await;
    };
    let agent = inbound.agent_id.clone();
    router
        .accept_offer(v1::AcceptOfferRequest {
            offer_id: inbound.offer_id.clone(),
            agent_id: agent.clone(),
        })
        .await
        .expect("accepted");
    router
        .resolve(v1::ResolveRequest {
            interaction_id: inbound.id.clone(),
            agent_id: agent,
            disposition: "appointment_booked".into(),
            outcome_tags: vec!["appointment_scheduled".into(), "care_gap_closed".into()],
            ..Default::default()
        })
        .await
        .expect("resolved");
    careline_testkit::assert_eventually!(
        stats().await.outcome_tags.get("care_gap_closed") == Some(&1),
        "the resolution rolls up to the campaign"
    );
    let rolled = stats().await;
    assert_eq!(rolled.dispositions.get("appointment_booked"), Some(&1));
    assert_eq!(rolled.outcome_tags.get("appointment_scheduled"), Some(&1));
    careline_testkit::assert_eventually!(
        !redis.exists::<_, bool>(&open_key).await.unwrap()
            || redis.scard::<_, u64>(&open_key).await.unwrap() == 0,
        "the interaction is no longer open"
    );
    // The deferral is over after its wait.
    platform.advance_ms(careline_campaigns::campaigns::OPEN_INTERACTION_DEFER_MS + 1_000);
    careline_testkit::assert_eventually!(
        platform
            .outbound("busy")
            .await
            .iter()
            .any(|ix| ix.member_ref == "m-busy"),
        "the member is called once the contact ended"
    );
    platform.stop().await;
}
