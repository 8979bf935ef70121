//! Pacing under a burst: at most `max_in_progress` at once, `max_per_hour`
//! per clock hour, and the campaign's share of the queue's agents.

use careline_campaigns::Campaigns;
use careline_domain::campaign::CampaignConfig;

use crate::harness::{Platform, TENANT, targets, tenant, voice_campaign};

async fn stats(core: &Campaigns, code: &str) -> careline_campaigns::campaigns::CampaignStats {
    core.stats(TENANT, code).await.expect("stats")
}

fn with(code: &str, configure: impl FnOnce(&mut CampaignConfig)) -> CampaignConfig {
    let mut campaign = voice_campaign(code, 100);
    configure(&mut campaign);
    campaign
}

#[tokio::test]
async fn a_burst_of_targets_starts_only_what_pacing_and_the_agent_share_allow() {
    let platform = Platform::start(tenant(vec![
        with("paced", |c| c.pacing.max_in_progress = 4),
        with("hourly", |c| c.pacing.max_per_hour = 3),
        // 10 agents serve `general`: 20% of them is 2 outbound contacts at once.
        with("share", |c| c.pacing.agent_share_percent = 20),
    ]))
    .await;
    let floor = platform.login_floor().await;
    assert_eq!(floor.len(), 10);
    let core = platform.core(platform.clock()).await;
    for code in ["paced", "hourly", "share"] {
        let (added, _) = core
            .add_targets(TENANT, code, &targets(code, 50))
            .await
            .unwrap();
        assert_eq!(added, 50);
    }
    for _ in 0..3 {
        core.run_due(TENANT).await.unwrap();
    }
    let paced = stats(&core, "paced").await;
    assert_eq!((paced.attempts, paced.in_progress, paced.due), (4, 4, 46));
    assert_eq!(platform.outbound("paced").await.len(), 4);
    assert_eq!(stats(&core, "hourly").await.attempts, 3);
    assert_eq!(stats(&core, "share").await.attempts, 2);

    // Two results free two places; the next pass fills them, no more.
    for ix in platform.outbound("paced").await.iter().take(2) {
        core.report(
            TENANT,
            "paced",
            &ix.member_ref,
            careline_domain::campaign::AttemptResult::Reached,
        )
        .await
        .unwrap();
    }
    core.run_due(TENANT).await.unwrap();
    core.run_due(TENANT).await.unwrap();
    let paced = stats(&core, "paced").await;
    assert_eq!((paced.attempts, paced.in_progress), (6, 4));

    // The next clock hour allows three more.
    platform.advance_ms(60 * 60 * 1000);
    core.run_due(TENANT).await.unwrap();
    core.run_due(TENANT).await.unwrap();
    assert_eq!(stats(&core, "hourly").await.attempts, 6);
    platform.stop().await;
}
