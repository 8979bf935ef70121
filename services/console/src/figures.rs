//! The KPI definitions: how a period's raw counters become the figures a
//! supervisor reads (averages and rates). Pure arithmetic, no I/O; the README's
//! KPI table describes the same formulas.

use std::collections::HashMap;

use careline_domain::survey::net_promoter_score;
use careline_proto::v1;
use chrono_tz::Tz;

use crate::consumer::{
    COACHING_MARKED, QUALITY_CRITERION_N, QUALITY_CRITERION_SUM, QUALITY_REVIEWS, SURVEYS_ANSWERED,
};

use crate::periods::{self, Bucket, Period};

/// The proto period of `period`.
pub fn proto_period(period: Period) -> v1::KpiPeriod {
    match period {
        Period::QuarterHour => v1::KpiPeriod::QuarterHour,
        Period::Hour => v1::KpiPeriod::Hour,
        Period::Day => v1::KpiPeriod::Day,
    }
}

fn ratio(part: i64, whole: i64, empty: f64) -> f64 {
    if whole <= 0 {
        empty
    } else {
        (part.max(0) as f64 / whole as f64).clamp(0.0, 1.0)
    }
}

fn average(total: i64, count: i64) -> f64 {
    if count <= 0 {
        0.0
    } else {
        total as f64 / count as f64
    }
}

fn average_secs(total_ms: i64, count: i64) -> f64 {
    average(total_ms, count) / 1000.0
}

/// The figures of one period from its counters.
pub fn kpis(tz: Tz, bucket: Bucket, counters: &HashMap<String, i64>) -> v1::Kpis {
    let get = |field: &str| counters.get(field).copied().unwrap_or(0);
    let count = |field: &str| u64::try_from(get(field)).unwrap_or(0);
    let answered = get("answered");
    let short = get("abandoned_short");
    let long_abandoned = get("abandoned") - short;
    let handle_ms = get("handle_ms");
    let wrap_ms = get("wrap_ms");
    let mut outcomes = std::collections::BTreeMap::new();
    let mut states = std::collections::BTreeMap::new();
    let mut by_criterion = std::collections::BTreeMap::new();
    let (mut quality_sum, mut quality_n) = (0, 0);
    // A field whose additions and corrections cancelled out is not shown.
    for (field, value) in counters.iter().filter(|(_, value)| **value != 0) {
        if let Some(tag) = field.strip_prefix("outcome:") {
            outcomes.insert(tag.to_owned(), u64::try_from(*value).unwrap_or(0));
        } else if let Some(state) = field.strip_prefix("st:") {
            states.insert(state.to_owned(), *value as f64 / 1000.0);
        } else if let Some(criterion) = field.strip_prefix(QUALITY_CRITERION_SUM) {
            let n = get(&format!("{QUALITY_CRITERION_N}{criterion}"));
            by_criterion.insert(criterion.to_owned(), average(*value, n));
            quality_sum += value;
            quality_n += n;
        }
    }
    if handle_ms > 0 {
        states.insert("handling".to_owned(), handle_ms as f64 / 1000.0);
    }
    if wrap_ms > 0 {
        states.insert("wrap_up".to_owned(), wrap_ms as f64 / 1000.0);
    }
    v1::Kpis {
        period: proto_period(bucket.period) as i32,
        start_ms: bucket.start_ms,
        start_local: periods::local_label(tz, bucket.start_ms),
        created: count("created"),
        answered: count("answered"),
        answered_timed: count("answered_timed"),
        answered_within_service_level: count("sl_met"),
        abandoned: count("abandoned"),
        abandoned_short: count("abandoned_short"),
        resolved: count("resolved"),
        transferred: count("transferred"),
        repeat_contacts: count("repeats"),
        offer_timeouts: count("offer_timeouts"),
        average_speed_of_answer_secs: average_secs(get("asa_ms"), get("answered_timed")),
        average_handle_secs: average_secs(handle_ms, get("handled")),
        average_wrap_up_secs: average_secs(wrap_ms, get("wrapped")),
        average_queue_secs: average_secs(get("queue_ms"), get("queue_n")),
        service_level: ratio(get("sl_met"), get("answered_timed"), 1.0),
        abandonment_rate: ratio(long_abandoned, answered + long_abandoned, 0.0),
        transfer_rate: ratio(get("transferred"), answered, 0.0),
        first_contact_resolution: ratio(get("resolved") - get("repeats"), get("resolved"), 0.0),
        occupancy: ratio(handle_ms + wrap_ms, get("st:available"), 0.0),
        outcomes,
        agent_state_secs: states,
        surveys_answered: count(SURVEYS_ANSWERED),
        nps_promoters: count("nps_promoters"),
        nps_detractors: count("nps_detractors"),
        nps: net_promoter_score(
            count("nps_promoters"),
            count("nps_detractors"),
            count(SURVEYS_ANSWERED),
        ),
        quality_reviews: count(QUALITY_REVIEWS),
        average_quality_score: average(quality_sum, quality_n),
        quality_by_criterion: by_criterion,
        coaching_marked: count(COACHING_MARKED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_the_definitions() {
        let counters: HashMap<String, i64> = [
            ("created", 10),
            ("answered", 8),
            ("answered_timed", 8),
            ("asa_ms", 80_000),
            ("sl_met", 6),
            ("abandoned", 3),
            ("abandoned_short", 1),
            ("resolved", 4),
            ("repeats", 1),
            ("handled", 4),
            ("handle_ms", 400_000),
            ("transferred", 2),
            ("st:available", 1_000_000),
            ("wrap_ms", 100_000),
            ("outcome:referral", 2),
            ("surveys_answered", 4),
            ("nps_promoters", 2),
            ("nps_detractors", 1),
            ("quality_reviews", 2),
            ("qn:accuracy", 2),
            ("qs:accuracy", 9),
            ("qn:tone", 2),
            ("qs:tone", 5),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let bucket = Bucket {
            period: Period::Hour,
            start_ms: 0,
        };
        let k = kpis(chrono_tz::UTC, bucket, &counters);
        assert_eq!(k.average_speed_of_answer_secs, 10.0);
        assert_eq!(k.service_level, 0.75);
        assert_eq!(k.abandonment_rate, 0.2);
        assert_eq!(k.transfer_rate, 0.25);
        assert_eq!(k.first_contact_resolution, 0.75);
        assert_eq!(k.average_handle_secs, 100.0);
        assert_eq!(k.occupancy, 0.5);
        assert_eq!(k.outcomes["referral"], 2);
        assert_eq!(k.agent_state_secs["available"], 1000.0);
        assert_eq!(k.nps, 25.0, "(2 promoters - 1 detractor) / 4 answers");
        assert_eq!(k.quality_by_criterion["accuracy"], 4.5);
        assert_eq!(k.average_quality_score, 3.5, "14 points over 4 scores");
    }

    #[test]
    fn empty_period_has_full_service_level_and_zero_rates() {
        let bucket = Bucket {
            period: Period::Day,
            start_ms: 0,
        };
        let k = kpis(chrono_tz::UTC, bucket, &HashMap::new());
        assert_eq!(k.service_level, 1.0);
        assert_eq!(k.abandonment_rate, 0.0);
        assert_eq!(k.average_speed_of_answer_secs, 0.0);
    }
}
