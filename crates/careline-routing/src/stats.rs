//! Queue statistics for supervisors and SREs: depth per priority, oldest
//! wait, agents by state and the service level of the current hour.
//!
//! Reads only (pipelined); nothing here is on the routing hot path.

use std::collections::HashMap;

use careline_domain::targets::routing_targets;
use careline_domain::tenant::TenantConfig;
use careline_domain::{Channel, Priority};
use careline_proto::v1;

use crate::convert::priority_to_proto;
use crate::error::Result;
use crate::keys;
use crate::store::RoutingStore;

const BAND: i64 = 10_000_000_000_000;
/// Contacts waiting for one agent read per agent queue (they are few: a
/// transfer or follow-up falls back to its queue after a while).
const MAX_PERSONAL_READ: isize = 1_000;

impl RoutingStore {
    /// Stats of one queue, or of every queue of the tenant when `queue` is `None`.
    pub async fn queue_stats(
        &self,
        config: &TenantConfig,
        queue: Option<&str>,
    ) -> Result<v1::GetQueueStatsResponse> {
        let tenant = &config.id;
        let mut conn = self.connection();
        let now_ms = redis_now_ms(&mut conn).await?;
        let targets = routing_targets(config);
        let queues: Vec<&str> = config
            .queues
            .iter()
            .map(|q| q.id.as_str())
            .filter(|id| queue.is_none_or(|wanted| wanted == *id))
            .collect();

        // Per queue: every (target, channel, language, band) key range.
        let mut pipe = redis::pipe();
        let mut slots: Vec<(usize, u8)> = Vec::new();
        for (index, queue_id) in queues.iter().enumerate() {
            for target in targets.iter().filter(|t| t.queue == *queue_id) {
                for channel in Channel::ALL {
                    for language in &config.languages {
                        let key = keys::queue(tenant, &target.name, channel, language.as_str());
                        for band in 0..4u8 {
                            let low = i64::from(band) * BAND;
                            pipe.cmd("ZRANGEBYSCORE")
                                .arg(&key)
                                .arg(low)
                                .arg(format!("({}", low + BAND))
                                .arg("WITHSCORES")
                                .arg("LIMIT")
                                .arg(0)
                                .arg(1);
                            pipe.zcount(&key, low, format!("({}", low + BAND));
                            slots.push((index, band));
                        }
                    }
                }
            }
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let mut waiting = vec![[0u32; 4]; queues.len()];
        let mut oldest = vec![i64::MAX; queues.len()];
        for (pair, (index, band)) in replies.chunks(2).zip(&slots) {
            let head: Vec<(String, f64)> = redis::from_redis_value(pair[0].clone())?;
            let count: u32 = redis::from_redis_value(pair[1].clone())?;
            waiting[*index][usize::from(*band)] += count;
            if let Some((_, score)) = head.first() {
                let since = (*score as i64) - i64::from(*band) * BAND;
                oldest[*index] = oldest[*index].min(since);
            }
        }

        // Contacts waiting for one agent count in the queue they belong to.
        for (queue_id, band, since) in self.personal_waiting(tenant, &mut conn).await? {
            let Some(index) = queues.iter().position(|q| *q == queue_id) else {
                continue;
            };
            waiting[index][usize::from(band)] += 1;
            oldest[index] = oldest[index].min(since);
        }

        let agents = self.agent_presence(tenant, &mut conn).await?;
        let hour = now_ms / 3_600_000;
        let mut pipe = redis::pipe();
        for queue_id in &queues {
            pipe.hgetall(keys::tenant_key(tenant, &format!("sl:{queue_id}:{hour}")));
        }
        let service: Vec<HashMap<String, u32>> = pipe.query_async(&mut conn).await?;

        let stats = queues
            .iter()
            .enumerate()
            .map(|(index, queue_id)| {
                let serving: Vec<&AgentPresence> = agents
                    .iter()
                    .filter(|a| a.online && a.serves(queue_id))
                    .collect();
                let available = serving.iter().filter(|a| a.available && !a.busy).count();
                let busy_count = serving.iter().filter(|a| a.busy).count();
                let away = serving.iter().filter(|a| !a.available && !a.busy).count();
                let answered = service[index].get("answered").copied().unwrap_or(0);
                let within = service[index].get("within").copied().unwrap_or(0);
                let depth = waiting[index];
                v1::QueueStats {
                    queue_id: queue_id.to_string(),
                    waiting: depth.iter().sum(),
                    depth_by_priority: (0..4u8)
                        .filter_map(|band| Priority::from_band(band).map(|p| (band, p)))
                        .map(|(band, priority)| v1::PriorityDepth {
                            priority: priority_to_proto(priority) as i32,
                            waiting: depth[usize::from(band)],
                        })
                        .collect(),
                    urgent_waiting: depth[0],
                    oldest_wait_ms: if oldest[index] == i64::MAX {
                        0
                    } else {
                        (now_ms - oldest[index]).max(0)
                    },
                    agents_available: count(available),
                    agents_busy: count(busy_count),
                    agents_away: count(away),
                    service_level: if answered == 0 {
                        1.0
                    } else {
                        f64::from(within) / f64::from(answered)
                    },
                    answered,
                    answered_urgent: service[index].get("urgent").copied().unwrap_or(0),
                }
            })
            .collect();
        Ok(v1::GetQueueStatsResponse {
            queues: stats,
            at_ms: now_ms,
        })
    }
}

/// Just what the stats need of an agent (not its whole hash).
struct AgentPresence {
    online: bool,
    available: bool,
    busy: bool,
    /// Comma-separated targets the agent serves.
    targets: String,
}

impl AgentPresence {
    fn serves(&self, queue: &str) -> bool {
        self.targets.split(',').any(|t| t == queue)
    }
}

impl RoutingStore {
    /// (queue, priority band, waiting since ms) of every contact waiting in an
    /// agent's personal queue (`q:@<agent>:...`, found through `waiting`).
    async fn personal_waiting(
        &self,
        tenant: &str,
        conn: &mut careline_kit::RedisConnection,
    ) -> Result<Vec<(String, u8, i64)>> {
        let personal_prefix = keys::tenant_key(tenant, "q:@");
        let queue_keys: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::tenant_key(tenant, "waiting"))
            .query_async::<Vec<String>>(conn)
            .await?
            .into_iter()
            .filter(|key| key.starts_with(&personal_prefix))
            .collect();
        if queue_keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in &queue_keys {
            pipe.zrange_withscores(key, 0, MAX_PERSONAL_READ - 1);
        }
        let entries: Vec<(String, f64)> = pipe
            .query_async::<Vec<Vec<(String, f64)>>>(conn)
            .await?
            .into_iter()
            .flatten()
            .collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (id, _) in &entries {
            pipe.hget(keys::interaction(tenant, id), "queue");
        }
        let queues: Vec<Option<String>> = pipe.query_async(conn).await?;
        Ok(entries
            .into_iter()
            .zip(queues)
            .filter_map(|((_, score), queue)| {
                let score = score as i64;
                let band = u8::try_from(score / BAND).ok()?;
                Some((queue?, band.min(3), score % BAND))
            })
            .collect())
    }

    async fn agent_presence(
        &self,
        tenant: &str,
        conn: &mut careline_kit::RedisConnection,
    ) -> Result<Vec<AgentPresence>> {
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::tenant_key(tenant, "agents"))
            .query_async(conn)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET").arg(keys::agent(tenant, id)).arg(&[
                "online",
                "state",
                "targets",
                "used:voice",
                "used:chat",
                "used:email",
            ]);
        }
        type Fields = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<u32>,
            Option<u32>,
            Option<u32>,
        );
        let rows: Vec<Fields> = pipe.query_async(conn).await?;
        Ok(rows
            .into_iter()
            .map(
                |(online, state, targets, voice, chat, email)| AgentPresence {
                    online: online.as_deref() == Some("1"),
                    available: state.as_deref() == Some("available"),
                    busy: [voice, chat, email].into_iter().flatten().sum::<u32>() > 0,
                    targets: targets.unwrap_or_default(),
                },
            )
            .collect())
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Redis' clock: the one every script uses.
pub(crate) async fn redis_now_ms(conn: &mut careline_kit::RedisConnection) -> Result<i64> {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs * 1000 + micros / 1000)
}
