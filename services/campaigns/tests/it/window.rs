//! The outreach window in the tenant's time zone, across a DST change.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use careline_domain::tenant::OpeningHours;

use crate::harness::{Platform, TENANT, targets, tenant, voice_campaign};

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn outreach_follows_the_tenants_local_hours_across_the_spring_dst_change() {
    let mut config = tenant(vec![voice_campaign("checkup", 10)]);
    // Denver, weekdays 09:00-19:00 local: UTC-7 until 8 March 2026, UTC-6 after.
    config.outreach.hours = vec![OpeningHours {
        days: vec![
            chrono::Weekday::Mon,
            chrono::Weekday::Tue,
            chrono::Weekday::Wed,
            chrono::Weekday::Thu,
            chrono::Weekday::Fri,
        ],
        open: "09:00".into(),
        close: "19:00".into(),
    }];
    let platform = Platform::start(config).await;
    platform.login_floor().await;
    let now = Arc::new(AtomicI64::new(ms("2026-03-06T15:30:00Z")));
    let clock_now = now.clone();
    let core = platform
        .core(Arc::new(move || clock_now.load(Ordering::SeqCst)))
        .await;
    core.add_targets(TENANT, "checkup", &targets("dst", 3))
        .await
        .unwrap();

    // Friday 08:30 MST: before the outreach hours.
    assert_eq!(core.run_due(TENANT).await.unwrap(), 0);
    assert!(!core.stats(TENANT, "checkup").await.unwrap().in_window);
    // Saturday 10:30 MST: a weekend day.
    now.store(ms("2026-03-07T17:30:00Z"), Ordering::SeqCst);
    assert_eq!(core.run_due(TENANT).await.unwrap(), 0);
    // Monday 15:30 UTC is 09:30 MDT after the change: open (it was 08:30 a week earlier).
    now.store(ms("2026-03-09T15:30:00Z"), Ordering::SeqCst);
    assert!(core.stats(TENANT, "checkup").await.unwrap().in_window);
    assert_eq!(core.run_due(TENANT).await.unwrap(), 3);
    // Monday 19:30 MDT (01:30 UTC Tuesday): closed again.
    core.add_targets(TENANT, "checkup", &targets("late", 1))
        .await
        .unwrap();
    now.store(ms("2026-03-10T01:30:00Z"), Ordering::SeqCst);
    assert_eq!(core.run_due(TENANT).await.unwrap(), 0);
    let stats = core.stats(TENANT, "checkup").await.unwrap();
    assert_eq!((stats.attempts, stats.due), (3, 1));
    platform.stop().await;
}
