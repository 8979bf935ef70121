//! Email campaigns: one notification request per target and attempt, with
//! the campaign's template, through the notifications work queue.

use careline_domain::Channel;
use careline_proto::v1;
use futures::StreamExt;
use prost::Message;

use crate::harness::{Platform, TENANT, targets, tenant, voice_campaign};

#[tokio::test]
async fn an_email_campaign_asks_notifications_for_one_email_per_target_with_its_template() {
    let mut mail = voice_campaign("flu-mail", 50);
    mail.channel = Channel::Email;
    mail.queue = None;
    mail.template = Some("outreach".into());
    let platform = Platform::start(tenant(vec![mail])).await;
    let nats = platform.sandbox.nats().await.unwrap();
    let mut requests = nats
        .subscribe(format!("careline.{TENANT}.notification.requested"))
        .await
        .unwrap();
    let core = platform.core(platform.clock()).await;
    let mut batch = targets("mail", 2);
    batch[0].contact_hint = "pat@member.example".into();
    batch[1].contact_hint = "rio@member.example".into();
    batch[1].language = v1::Language::Es as i32;
    core.add_targets(TENANT, "flu-mail", &batch).await.unwrap();
    // No agents are needed: email does not use the agent share.
    assert_eq!(core.run_due(TENANT).await.unwrap(), 2);
    assert_eq!(
        core.run_due(TENANT).await.unwrap(),
        0,
        "each target emailed once"
    );

    let mut seen = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), requests.next())
            .await
            .expect("a notification request")
            .expect("the subscription goes on");
        let request = v1::NotificationRequested::decode(message.payload).unwrap();
        assert_eq!(request.template, "outreach");
        assert_eq!(request.variables["campaign_name"], "Test flu-mail");
        assert!(request.notification_id.starts_with("campaign:flu-mail:"));
        seen.push((request.to_address, request.language));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("pat@member.example".to_owned(), "en".to_owned()),
            ("rio@member.example".to_owned(), "es".to_owned())
        ]
    );
    let stats = core.stats(TENANT, "flu-mail").await.unwrap();
    assert_eq!(stats.attempts, 2);
    assert_eq!(stats.results.get("emailed"), Some(&2));
    platform.stop().await;
}
