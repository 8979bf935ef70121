//! The KPI arithmetic on a scripted day in New York on the day clocks spring
//! forward (2026-03-08: 02:00 EST becomes 03:00 EDT), with a contact that
//! waits across local midnight, and replays of the log.

use careline_proto::v1;
use careline_proto::v1::{AgentEventKind as A, InteractionEventKind as I};

use crate::harness::{DEMO_KEY, Platform, TENANT};

pub(crate) fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("valid time")
        .timestamp_millis()
}

/// Events as the router publishes them, numbered in order.
pub(crate) struct Log {
    pub(crate) events: Vec<v1::Event>,
    tenant: String,
}

impl Default for Log {
    fn default() -> Self {
        Log::of(TENANT)
    }
}

impl Log {
    /// An empty log of `tenant`.
    pub(crate) fn of(tenant: &str) -> Log {
        Log {
            events: Vec::new(),
            tenant: tenant.to_owned(),
        }
    }

    pub(crate) fn push(&mut self, at: &str, payload: v1::event::Payload) {
        let sequence = self.events.len() as u64 + 1;
        self.events.push(v1::Event {
            event_id: format!("{}:script-{sequence}", self.tenant),
            tenant_id: self.tenant.clone(),
            occurred_at_ms: ms(at),
            sequence,
            payload: Some(payload),
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ix(
        &mut self,
        at: &str,
        kind: I,
        id: &str,
        queue: &str,
        agent: &str,
        member: &str,
        tags: &[&str],
    ) {
        self.push(
            at,
            v1::event::Payload::Interaction(v1::InteractionEvent {
                kind: kind as i32,
                interaction_id: id.to_owned(),
                queue_id: queue.to_owned(),
                channel: v1::Channel::Chat as i32,
                agent_id: agent.to_owned(),
                member_ref: member.to_owned(),
                outcome_tags: tags.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            }),
        );
    }

    fn agent(&mut self, at: &str, kind: A, agent: &str, state: &str, reason: &str) {
        self.push(
            at,
            v1::event::Payload::Agent(v1::AgentEvent {
                kind: kind as i32,
                agent_id: agent.to_owned(),
                state: state.to_owned(),
                reason: reason.to_owned(),
                channel: v1::Channel::Chat as i32,
            }),
        );
    }
}

/// The scripted day (times in New York).
fn spring_forward_day() -> Vec<v1::Event> {
    let mut log = Log::default();
    log.agent(
        "2026-03-07T23:00:00-05:00",
        A::LoggedIn,
        "ana",
        "available",
        "",
    );
    // A waits across local midnight: created on the 7th, answered on the 8th.
    log.ix(
        "2026-03-07T23:59:50-05:00",
        I::Created,
        "ix_a",
        "general",
        "",
        "m1",
        &[],
    );
    log.ix(
        "2026-03-07T23:59:50-05:00",
        I::Offered,
        "ix_a",
        "general",
        "ana",
        "m1",
        &[],
    );
    log.ix(
        "2026-03-08T00:00:10-05:00",
        I::Assigned,
        "ix_a",
        "general",
        "ana",
        "m1",
        &[],
    );
    log.ix(
        "2026-03-08T00:05:10-05:00",
        I::Resolved,
        "ix_a",
        "general",
        "ana",
        "m1",
        &["appointment_scheduled"],
    );
    log.agent(
        "2026-03-08T00:05:40-05:00",
        A::CapacityReleased,
        "ana",
        "",
        "",
    );
    log.agent(
        "2026-03-08T01:30:00-05:00",
        A::StateChanged,
        "ana",
        "away",
        "lunch",
    );
    // B waits across the clock change: 01:59 EST to 03:00:40 EDT is 100 s.
    log.ix(
        "2026-03-08T01:59:00-05:00",
        I::Created,
        "ix_b",
        "general",
        "",
        "m2",
        &[],
    );
    log.ix(
        "2026-03-08T03:00:40-04:00",
        I::Assigned,
        "ix_b",
        "general",
        "luis",
        "m2",
        &[],
    );
    log.ix(
        "2026-03-08T03:10:40-04:00",
        I::Resolved,
        "ix_b",
        "general",
        "luis",
        "m2",
        &["referral"],
    );
    // Back from a lunch of one real hour (01:30 EST to 03:30 EDT).
    log.agent(
        "2026-03-08T03:30:00-04:00",
        A::StateChanged,
        "ana",
        "available",
        "",
    );
    // C: member m1 again (A was not resolved at first contact); leaves after 3 s.
    log.ix(
        "2026-03-08T10:00:00-04:00",
        I::Created,
        "ix_c",
        "general",
        "",
        "m1",
        &[],
    );
    log.ix(
        "2026-03-08T10:00:03-04:00",
        I::Abandoned,
        "ix_c",
        "general",
        "",
        "m1",
        &[],
    );
    // D leaves billing after two minutes.
    log.ix(
        "2026-03-08T11:00:00-04:00",
        I::Created,
        "ix_d",
        "billing",
        "",
        "m3",
        &[],
    );
    log.ix(
        "2026-03-08T11:02:00-04:00",
        I::Abandoned,
        "ix_d",
        "billing",
        "",
        "m3",
        &[],
    );
    // E: answered by ana, transferred to billing, resolved by kim.
    log.ix(
        "2026-03-08T12:00:00-04:00",
        I::Created,
        "ix_e",
        "general",
        "",
        "m1",
        &[],
    );
    log.ix(
        "2026-03-08T12:00:20-04:00",
        I::Assigned,
        "ix_e",
        "general",
        "ana",
        "m1",
        &[],
    );
    log.ix(
        "2026-03-08T12:05:00-04:00",
        I::Transferred,
        "ix_e",
        "general",
        "ana",
        "m1",
        &[],
    );
    log.ix(
        "2026-03-08T12:06:00-04:00",
        I::Assigned,
        "ix_e",
        "billing",
        "kim",
        "m1",
        &[],
    );
    log.ix(
        "2026-03-08T12:16:00-04:00",
        I::Resolved,
        "ix_e",
        "billing",
        "kim",
        "m1",
        &[],
    );
    log.agent(
        "2026-03-08T23:30:00-04:00",
        A::LoggedOut,
        "ana",
        "offline",
        "logout",
    );
    log.events
}

fn day_request(queue: &str, agent: &str) -> v1::GetKpisRequest {
    v1::GetKpisRequest {
        period: v1::KpiPeriod::Day as i32,
        queue_id: queue.to_owned(),
        agent_id: agent.to_owned(),
        from_ms: ms("2026-03-07T00:00:00-05:00"),
        to_ms: ms("2026-03-09T00:00:00-04:00"),
    }
}

async fn kpis(platform: &Platform, request: v1::GetKpisRequest) -> v1::GetKpisResponse {
    platform
        .client(DEMO_KEY)
        .await
        .get_kpis(request)
        .await
        .expect("GetKpis answers")
        .into_inner()
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-9
}

#[tokio::test]
async fn scripted_spring_forward_day_adds_up_in_the_tenant_zone() {
    careline_kit::metrics::prometheus_handle().expect("metrics recorder");
    let platform = Platform::start(1).await;
    platform.publish(&spring_forward_day()).await;
    platform.settled().await;

    let days = kpis(&platform, day_request("", "")).await;
    assert_eq!(days.time_zone, "America/New_York");
    let [eve, day] = days.periods.as_slice() else {
        panic!("two local days expected: {:#?}", days.periods);
    };
    assert_eq!(eve.start_local, "2026-03-07T00:00:00-05:00");
    assert_eq!(eve.created, 1, "A was created before local midnight");
    assert_eq!(eve.agent_state_secs["available"], 3600.0);
    assert_eq!(day.start_local, "2026-03-08T00:00:00-05:00");
    assert_eq!(day.created, 4);
    assert_eq!(day.answered, 3, "A is answered after midnight, on the 8th");
    assert!(
        close(day.average_speed_of_answer_secs, 140.0 / 3.0),
        "{day:#?}"
    );
    assert_eq!(
        day.answered_within_service_level, 2,
        "B waited 100 s across the clock change"
    );
    assert!(close(day.service_level, 2.0 / 3.0));
    assert_eq!((day.abandoned, day.abandoned_short), (2, 1));
    assert!(
        close(day.abandonment_rate, 0.25),
        "one long abandon of four"
    );
    assert!(close(day.average_queue_secs, 263.0 / 5.0));
    assert_eq!(day.resolved, 3);
    assert!(
        close(day.average_handle_secs, 500.0),
        "300 s, 600 s and kim's 600 s"
    );
    assert!(close(day.average_wrap_up_secs, 30.0));
    assert!(close(day.transfer_rate, 1.0 / 3.0));
    assert_eq!(day.repeat_contacts, 1, "m1 came back after A was resolved");
    assert!(close(day.first_contact_resolution, 2.0 / 3.0));
    assert_eq!(day.outcomes["appointment_scheduled"], 1);
    assert_eq!(day.outcomes["referral"], 1);
    assert_eq!(day.agent_state_secs["available"], 77_400.0);
    assert_eq!(day.agent_state_secs["away:lunch"], 3600.0, "one real hour");

    let hours = kpis(
        &platform,
        v1::GetKpisRequest {
            period: v1::KpiPeriod::Hour as i32,
            ..day_request("", "")
        },
    )
    .await;
    assert!(
        hours
            .periods
            .iter()
            .all(|h| !h.start_local.contains("T02:")),
        "no 02:00 hour on a spring-forward day"
    );
    let at_three = hours
        .periods
        .iter()
        .find(|h| h.start_local == "2026-03-08T03:00:00-04:00")
        .expect("the 03:00 EDT hour");
    assert_eq!(at_three.answered, 1);
    assert!(close(at_three.average_speed_of_answer_secs, 100.0));
    assert_eq!(at_three.agent_state_secs["away:lunch"], 1800.0);
    assert_eq!(at_three.agent_state_secs["available"], 1800.0);
    assert_eq!(
        hours
            .periods
            .iter()
            .filter(|h| h.start_ms >= day.start_ms)
            .count(),
        23,
        "ana was logged in every hour of the 23-hour day"
    );

    let general = &kpis(&platform, day_request("general", "")).await.periods;
    let general = general.last().expect("general on the 8th");
    assert_eq!(
        (general.created, general.answered, general.abandoned),
        (3, 3, 1)
    );
    let billing = &kpis(&platform, day_request("billing", "")).await.periods;
    let billing = billing.last().expect("billing on the 8th");
    assert_eq!(
        (billing.created, billing.abandoned, billing.resolved),
        (1, 1, 1)
    );
    assert!(close(billing.abandonment_rate, 1.0));
    let ana = &kpis(&platform, day_request("", "ana")).await.periods;
    let ana = ana.last().expect("ana on the 8th");
    assert_eq!((ana.answered, ana.resolved, ana.transferred), (2, 1, 1));
    assert!(close(ana.average_handle_secs, 300.0));
    assert!(close(ana.occupancy, 330.0 / 77_400.0));

    // The headline counters, for Prometheus (nextest runs each test in its own process).
    let metrics = careline_kit::metrics::render().expect("metrics");
    let value = |name: &str, queue: &str| {
        metrics
            .lines()
            .find(|line| {
                line.starts_with(&format!("{name}{{"))
                    && line.contains(&format!("queue=\"{queue}\""))
                    && line.contains(&format!("tenant=\"{TENANT}\""))
            })
            .and_then(|line| line.rsplit(' ').next())
            .unwrap_or_else(|| panic!("{name} for {queue} in:\n{metrics}"))
            .to_owned()
    };
    assert_eq!(value("careline_kpi_answered_total", "general"), "3");
    assert_eq!(value("careline_kpi_sl_met_total", "general"), "2");
    assert_eq!(value("careline_kpi_abandoned_total", "billing"), "1");
    assert_eq!(value("careline_kpi_asa_seconds_count", "general"), "3");
}

#[tokio::test]
async fn replaying_the_log_from_the_start_gives_the_same_numbers() {
    let mut platform = Platform::start(1).await;
    platform.publish(&spring_forward_day()).await;
    platform.settled().await;
    let quarter_hours = v1::GetKpisRequest {
        period: v1::KpiPeriod::QuarterHour as i32,
        ..day_request("", "")
    };
    let before = (
        kpis(&platform, day_request("", "")).await,
        kpis(&platform, quarter_hours.clone()).await,
        kpis(&platform, day_request("", "ana")).await,
    );
    assert_eq!(before.0.periods.len(), 2);

    // Every event delivered again: each is recognised and counted once.
    platform.stop_replicas().await;
    platform.rewind_consumer().await;
    platform.start_replica().await;
    platform.settled().await;
    let replayed = (
        kpis(&platform, day_request("", "")).await,
        kpis(&platform, quarter_hours.clone()).await,
        kpis(&platform, day_request("", "ana")).await,
    );
    assert_eq!(
        replayed, before,
        "a replay over the same store changes nothing"
    );

    // The store lost: two replicas rebuild it from the log, in whatever
    // order they happen to apply the events.
    platform.stop_replicas().await;
    let mut redis = platform.sandbox.redis().await.expect("redis");
    let () = redis::cmd("FLUSHALL")
        .query_async(&mut redis)
        .await
        .expect("flushed");
    platform.rewind_consumer().await;
    platform.start_replica().await;
    platform.start_replica().await;
    platform.settled().await;
    let rebuilt = (
        kpis(&platform, day_request("", "")).await,
        kpis(&platform, quarter_hours).await,
        kpis(&platform, day_request("", "ana")).await,
    );
    assert_eq!(
        rebuilt, before,
        "a rebuild from the log gives the same numbers"
    );
}

#[tokio::test]
async fn events_arriving_in_reverse_order_give_the_same_numbers() {
    let (in_order, reversed) = tokio::join!(Platform::start(1), Platform::start(1));
    let day = spring_forward_day();
    let mut backwards = day.clone();
    backwards.reverse();
    tokio::join!(in_order.publish(&day), reversed.publish(&backwards));
    tokio::join!(in_order.settled(), reversed.settled());
    for request in [
        day_request("", ""),
        day_request("", "ana"),
        day_request("general", ""),
        v1::GetKpisRequest {
            period: v1::KpiPeriod::QuarterHour as i32,
            ..day_request("", "")
        },
    ] {
        assert_eq!(
            kpis(&reversed, request.clone()).await,
            kpis(&in_order, request.clone()).await,
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn kpis_need_a_supervisor_key_and_refuse_a_queue_and_agent_pair() {
    let platform = Platform::start(1).await;
    let refused = platform
        .client(careline_testkit::demo::IVR_KEY)
        .await
        .get_kpis(v1::GetKpisRequest::default())
        .await
        .expect_err("an intake-only key reads no KPIs");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(
        refused.message().contains("supervisor"),
        "{}",
        refused.message()
    );
    let invalid = platform
        .client(DEMO_KEY)
        .await
        .get_kpis(day_request("general", "ana"))
        .await
        .expect_err("queue and agent together");
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    assert!(
        invalid.message().contains("send one of them"),
        "{}",
        invalid.message()
    );
}
