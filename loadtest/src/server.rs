//! What the Redis server itself reports, and `redis-benchmark` running
//! reference scripts beside ours for scale.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::Context;
use redis::aio::MultiplexedConnection;

/// About ten small reads and writes: the size the issue asks to compare with.
const SMALL_SCRIPT: &str = r#"
local p = KEYS[1]
redis.call('HSET', p .. 'h', 'a', '1', 'b', '2', 'c', '3')
redis.call('HGETALL', p .. 'h')
redis.call('INCR', p .. 'n')
redis.call('ZADD', p .. 'z1', 1, 'x')
redis.call('ZRANGE', p .. 'z1', 0, 15)
redis.call('ZADD', p .. 'z2', 2, 'y')
redis.call('ZREM', p .. 'z2', 'y')
redis.call('SET', p .. 's', 'v')
redis.call('GET', p .. 's')
redis.call('HGETALL', p .. 'h')
return 1
"#;

/// The command mix of one create that ends in an offer (see
/// create_interaction.lua and make_offer/reindex_agent in lib.lua): settings
/// read, idempotency key, interaction hash, live set, two outbox events,
/// queue push/pop, timers, one agent-index lookup, the agent's hash, and the
/// agent's re-index over 3 channels x 6 targets x 2 languages.
const CREATE_SHAPED_SCRIPT: &str = r#"
local p = KEYS[1]
if redis.call('EXISTS', p .. 'settings') == 0 then
  redis.call('HSET', p .. 'settings', 'strategy', 'longest_idle', 'offer_timeout:voice', 20,
    'offer_timeout:chat', 60, 'offer_timeout:email', 60, 'voice_exclusive', 1, 'wrap_up_secs', 0,
    'heartbeat_ttl_secs', 15, 'reconnect_grace_secs', 60, 'aging_after_secs', 300,
    'aging_max_band', 1, 'personal_fallback_secs', 300)
  redis.call('HSET', p .. 'agent', 'state', 'available', 'online', '1', 'cap:chat', 3,
    'used:chat', 0, 'targets', 'general,general~1,general~2,billing,clinical,@a',
    'langs', 'en,es', 'idle_since', 0, 'last_offer', 0)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HGETALL', p .. 'settings')
local id = 'ix' .. redis.call('INCR', p .. 'idseq')
redis.call('GET', p .. 'idem:' .. id)
redis.call('SET', p .. 'idem:' .. id, id, 'EX', 600)
redis.call('HSET', p .. 'ix:' .. id, 'ch', 'chat', 'lang', 'en', 'queue', 'general', 'band', 1,
  'urgent', 0, 'member', 'm', 'ctx', 'billing question', 'after_hours', 0, 'created', now, 'qenq', now)
redis.call('EXPIRE', p .. 'ix:' .. id, 600)
redis.call('ZADD', p .. 'live', now, id)
redis.call('XADD', p .. 'outbox', 'MAXLEN', '~', 10000, '*', 'seq', redis.call('INCR', p .. 'seq'),
  'kind', 'created', 'ix', id)
redis.call('ZADD', p .. 'q:general:chat:en', now, id)
redis.call('HSET', p .. 'ix:' .. id, 'state', 'queued', 'target', 'general', 'score', now)
redis.call('HGET', p .. 'settings', 'strategy')
redis.call('ZADD', p .. 'timers', now + 120000, 'ovf|' .. id)
redis.call('ZADD', p .. 'timers', now + 300000, 'age|' .. id)
redis.call('ZRANGE', p .. 'aq:general:chat:en', 0, 15)
redis.call('SISMEMBER', p .. 'ix:' .. id .. ':declined', 'a')
redis.call('HGETALL', p .. 'agent')
redis.call('INCR', p .. 'oseq')
redis.call('ZREM', p .. 'q:general:chat:en', id)
redis.call('HSET', p .. 'ix:' .. id, 'state', 'offered', 'agent', 'a', 'offer', 'o', 'updated', now)
redis.call('SET', p .. 'offer:' .. id, id, 'PX', 600000)
redis.call('HINCRBY', p .. 'agent', 'used:chat', 0)
redis.call('HSET', p .. 'agent', 'last_offer', now, 'idle_since', now)
redis.call('SADD', p .. 'holds', id)
redis.call('SREM', p .. 'holds', id)
redis.call('ZADD', p .. 'timers', now + 60000, 'offer|' .. id)
redis.call('ZREMRANGEBYRANK', p .. 'timers', 0, -1001)
redis.call('ZREMRANGEBYRANK', p .. 'live', 0, -1001)
redis.call('XADD', p .. 'outbox', 'MAXLEN', '~', 10000, '*', 'seq', redis.call('INCR', p .. 'seq'),
  'kind', 'offered', 'ix', id)
redis.call('HGETALL', p .. 'agent')
for _, ch in ipairs({'voice', 'chat', 'email'}) do
  for _, target in ipairs({'general', 'general~1', 'general~2', 'billing', 'clinical', '@a'}) do
    for _, lang in ipairs({'en', 'es'}) do
      redis.call('ZADD', p .. 'aq:' .. target .. ':' .. ch .. ':' .. lang, now, 'a')
    end
  end
end
return 1
"#;

/// The least a routing decision can be: the new contact is queued, then the
/// waiting contact and the longest-idle agent are popped and the offer is
/// written. The distance between this and a real create is the cost of
/// everything else a decision does (skills, capacity, timers, events).
const MINIMAL_MATCH_SCRIPT: &str = r#"
local p = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = 'ix' .. redis.call('INCR', p .. 'seq')
redis.call('ZADD', p .. 'waiting', now, id)
local contact = redis.call('ZPOPMIN', p .. 'waiting')
local agent = redis.call('ZPOPMIN', p .. 'idle')
if agent[1] == nil then agent = {'a', now} end
redis.call('HSET', p .. 'offer:' .. contact[1], 'agent', agent[1], 'at', now)
redis.call('ZADD', p .. 'idle', now, agent[1])
return 1
"#;

/// A reference script for `redis-benchmark`.
#[derive(Debug, Clone, Copy)]
pub enum Reference {
    Small,
    CreateShaped,
    MinimalMatch,
}

impl Reference {
    fn source(self) -> &'static str {
        match self {
            Reference::Small => SMALL_SCRIPT,
            Reference::CreateShaped => CREATE_SHAPED_SCRIPT,
            Reference::MinimalMatch => MINIMAL_MATCH_SCRIPT,
        }
    }
}

/// Loads the reference script and runs `redis-benchmark -q` with it; returns
/// its requests per second, or why it could not run.
pub async fn redis_benchmark(
    conn: &mut MultiplexedConnection,
    host: &str,
    port: u16,
    reference: Reference,
    requests: u64,
    clients: usize,
) -> anyhow::Result<f64> {
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(reference.source())
        .query_async(conn)
        .await
        .context("SCRIPT LOAD of the reference script")?;
    let args = [
        "-h".to_string(),
        host.to_string(),
        "-p".to_string(),
        port.to_string(),
        "-n".to_string(),
        requests.to_string(),
        "-c".to_string(),
        clients.to_string(),
        "-q".to_string(),
        "EVALSHA".to_string(),
        sha,
        "1".to_string(),
        "bench:{ref}:".to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new("redis-benchmark").args(&args).output()
    })
    .await?
    .map_err(|e| {
        anyhow::anyhow!(
            "could not run redis-benchmark ({e}); install it with `apt-get install -y redis-tools`"
        )
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_rps(&stdout).with_context(|| {
        format!(
            "no 'requests per second' in redis-benchmark output: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The requests/s of the last `-q` summary line ("...: 12345.68 requests per second, ...").
fn parse_rps(output: &str) -> Option<f64> {
    let line = output
        .split(['\r', '\n'])
        .rfind(|l| l.contains("requests per second"))?;
    let before = line.split("requests per second").next()?;
    before.rsplit(':').next()?.trim().parse().ok()
}

/// Calls and microseconds per command, from INFO commandstats.
pub type CommandStats = BTreeMap<String, (u64, u64)>;

pub async fn command_stats(conn: &mut MultiplexedConnection) -> anyhow::Result<CommandStats> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    let mut stats = CommandStats::new();
    for line in info.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |key: &str| -> u64 {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        stats.insert(name.to_string(), (field("calls"), field("usec")));
    }
    Ok(stats)
}

/// CPU time a Redis server has used since it started, from INFO cpu, in
/// microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct RedisCpu {
    /// The main thread (`used_cpu_sys_main_thread` + `used_cpu_user_main_thread`):
    /// the one thread that runs every command, so the part that bounds a
    /// shard's throughput.
    pub main_thread_us: f64,
    /// The whole process (`used_cpu_sys` + `used_cpu_user`): also the
    /// background threads (with `appendfsync everysec` the AOF fsync, lazy
    /// frees), which a production primary runs on its other cores.
    pub process_us: f64,
}

impl RedisCpu {
    /// CPU used between `earlier` and `self`.
    pub fn since(&self, earlier: &RedisCpu) -> RedisCpu {
        RedisCpu {
            main_thread_us: self.main_thread_us - earlier.main_thread_us,
            process_us: self.process_us - earlier.process_us,
        }
    }
}

/// The CPU time the server has used so far.
pub async fn redis_cpu(conn: &mut MultiplexedConnection) -> anyhow::Result<RedisCpu> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
    parse_cpu(&info).context(
        "INFO cpu lacks used_cpu_{sys,user}[_main_thread]: the benchmark needs Redis 6.2 or later",
    )
}

/// The number a field of an INFO reply (`name:value` lines) holds.
pub fn info_field(info: &str, name: &str) -> Option<f64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
        .trim()
        .parse()
        .ok()
}

/// The CPU times of an INFO cpu reply (seconds with microsecond digits).
fn parse_cpu(info: &str) -> Option<RedisCpu> {
    let us = |sys: &str, user: &str| Some((info_field(info, sys)? + info_field(info, user)?) * 1e6);
    Some(RedisCpu {
        main_thread_us: us("used_cpu_sys_main_thread", "used_cpu_user_main_thread")?,
        process_us: us("used_cpu_sys", "used_cpu_user")?,
    })
}

/// Calls of routing code: the routing library's functions and the
/// standalone scripts.
const SCRIPT_CALLS: [&str; 2] = ["fcall", "evalsha"];

/// Commands that are not part of a routing call: the calls themselves and
/// the benchmark's own bookkeeping.
pub fn outside_scripts(name: &str) -> bool {
    // Subcommands are counted as "<command>|<subcommand>".
    let command = name.split('|').next().unwrap_or(name);
    SCRIPT_CALLS.contains(&command)
        || matches!(
            command,
            "eval" | "function" | "script" | "config" | "slowlog" | "info"
        )
}

/// Scripts run, their server time (us) and the commands they issued between
/// two snapshots of [`command_stats`].
pub fn script_cost(before: &CommandStats, after: &CommandStats) -> (u64, u64, u64) {
    let delta = |name: &str, (calls, usec): (u64, u64)| {
        let (calls_before, usec_before) = before.get(name).copied().unwrap_or_default();
        (
            calls.saturating_sub(calls_before),
            usec.saturating_sub(usec_before),
        )
    };
    let (scripts, script_us) = SCRIPT_CALLS
        .iter()
        .filter_map(|name| after.get(*name).map(|stat| delta(name, *stat)))
        .fold((0, 0), |(calls, us), (c, u)| (calls + c, us + u));
    let inner = after
        .iter()
        .filter(|(name, _)| !outside_scripts(name))
        .map(|(name, stat)| delta(name, *stat).0)
        .sum();
    (scripts, script_us, inner)
}

pub async fn reset_stats(conn: &mut MultiplexedConnection) -> anyhow::Result<()> {
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async::<()>(conn)
        .await?;
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

/// Commands logged slower than the server's slowlog threshold since the last reset.
pub async fn slowlog_len(conn: &mut MultiplexedConnection) -> anyhow::Result<u64> {
    Ok(redis::cmd("SLOWLOG").arg("LEN").query_async(conn).await?)
}

/// Arguments of a slow command shown (a script's are its sha and keys).
const SLOWLOG_ARGS_SHOWN: usize = 4;

/// The newest `count` slowlog entries as "<us> us: <command and first arguments>".
pub async fn slowlog(
    conn: &mut MultiplexedConnection,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(entries
        .into_iter()
        .filter_map(|entry| {
            let redis::Value::Array(fields) = entry else {
                return None;
            };
            let micros: u64 = redis::from_redis_value(fields.get(2)?.clone()).ok()?;
            let args: Vec<String> = redis::from_redis_value(fields.get(3)?.clone()).ok()?;
            let shown: Vec<&str> = args
                .iter()
                .take(SLOWLOG_ARGS_SHOWN)
                .map(String::as_str)
                .collect();
            Some(format!("{micros} us: {}", shown.join(" ")))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rps_of_a_quiet_summary_line() {
        let out = "EVALSHA abc 1 k: rps=0.0 (overall: nan) avg_msec=nan\r\
                   EVALSHA abc 1 k: 41152.26 requests per second, p50=0.631 msec\n\n";
        assert_eq!(parse_rps(out), Some(41152.26));
    }

    #[test]
    fn reads_main_thread_and_process_cpu_from_info() {
        let info = "# CPU\r\nused_cpu_sys:0.5\r\nused_cpu_user:1.25\r\n\
                    used_cpu_sys_children:9.0\r\nused_cpu_user_children:9.0\r\n\
                    used_cpu_sys_main_thread:0.25\r\nused_cpu_user_main_thread:1.000001\r\n";
        let cpu = parse_cpu(info).expect("all four fields");
        assert!((cpu.main_thread_us - 1_250_001.0).abs() < 0.01, "{cpu:?}");
        assert!((cpu.process_us - 1_750_000.0).abs() < 0.01, "{cpu:?}");
    }

    #[test]
    fn info_without_main_thread_times_is_not_read_as_zero() {
        assert_eq!(
            parse_cpu("used_cpu_sys:0.5\r\nused_cpu_user:1.25\r\n"),
            None
        );
    }
}
