//! Benchmark (prints numbers, asserts nothing): resolved events processed
//! per second through the survey store with the throttle check, beside the
//! bare Redis round trip (`PING`) measured in the same run on the same server.
//!
//! Per event: `enqueue.lua` (schedule, idempotent), a share of one
//! `claim_due.lua` (batches of `SEND_BUDGET`, as the due worker claims),
//! `decide.lua` (opt-out, contact, the member's window) and `finish.lua`
//! for those sent. Members repeat (`MEMBERS` of them), so most events meet a
//! window already started and are throttled, as in production.
//!
//!   cargo bench -p careline-survey-dispatcher --bench throttle
//!
//! Starts its own redis-server (careline-localdev) on a free loopback port.

use std::time::Instant;

use careline_survey_dispatcher::store::{Decision, Job, SurveyStore, member_key};
use careline_survey_dispatcher::surveys::SEND_BUDGET;
use careline_testkit::RedisServer;
use futures::future::join_all;

/// Resolved events per run.
const EVENTS: usize = 20_000;
/// Distinct members the events belong to.
const MEMBERS: usize = 2_000;
/// Events handled at once in the concurrent run (the consumer's default).
const CONCURRENCY: usize = 16;
/// Bare round trips measured.
const PINGS: usize = 20_000;
const TENANT: &str = "bench";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const NOW_MS: i64 = 1_800_000_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = RedisServer::start().await?;
    let redis =
        careline_kit::RedisConnection::connect(&server.url(), &careline_kit::Tls::default())
            .await?;
    let store = SurveyStore::new(redis.clone());
    for m in 0..MEMBERS {
        let key = member_key(TENANT, &format!("member-{m}"));
        store
            .set_contact(TENANT, &key, "member@bench.example", "en", 30 * DAY_MS)
            .await?;
    }

    let started = Instant::now();
    for _ in 0..PINGS {
        let _: String = redis::cmd("PING").query_async(&mut redis.clone()).await?;
    }
    let ping = started.elapsed();
    println!(
        "redis PING round trip (sequential): {:.1} µs  ({:.0} round trips/s)",
        ping.as_secs_f64() * 1e6 / PINGS as f64,
        PINGS as f64 / ping.as_secs_f64()
    );

    for (label, concurrency) in [("sequential", 1), ("concurrent", CONCURRENCY)] {
        let (elapsed, sent) = run(&store, label, concurrency).await?;
        println!(
            "resolved events with throttle check ({label}, {concurrency} at once): {:.0} events/s  \
             ({EVENTS} events in {:.2} s, {sent} sent, {} throttled)",
            EVENTS as f64 / elapsed,
            elapsed,
            EVENTS - sent
        );
    }
    Ok(())
}

/// Processes `EVENTS` resolved events, `concurrency` at a time per batch;
/// returns the seconds taken and how many surveys were sent.
async fn run(store: &SurveyStore, label: &str, concurrency: usize) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let mut sent = 0;
    for (batch_no, batch) in (0..EVENTS)
        .collect::<Vec<_>>()
        .chunks(SEND_BUDGET)
        .enumerate()
    {
        let jobs: Vec<Job> = batch
            .iter()
            .map(|n| Job {
                interaction_id: format!("{label}-ix-{n}"),
                member_key: member_key(TENANT, &format!("member-{}", n % MEMBERS)),
                agent_id: "agent-1".into(),
                queue_id: "general".into(),
                due_ms: NOW_MS,
            })
            .collect();
        for chunk in jobs.chunks(concurrency) {
            for result in join_all(chunk.iter().map(|job| store.enqueue(TENANT, job))).await {
                result?;
            }
        }
        let now = NOW_MS + i64::try_from(batch_no).unwrap_or(0);
        let claimed = store.claim_due(TENANT, now, SEND_BUDGET).await?;
        for chunk in claimed.chunks(concurrency) {
            let decisions = join_all(
                chunk
                    .iter()
                    .map(|id| store.decide(TENANT, id, now, 90 * DAY_MS, 14 * DAY_MS)),
            )
            .await;
            for (id, decision) in chunk.iter().zip(decisions) {
                if let Decision::Send { .. } = decision? {
                    store.finish(TENANT, id).await?;
                    sent += 1;
                }
            }
        }
    }
    Ok((started.elapsed().as_secs_f64(), sent))
}
