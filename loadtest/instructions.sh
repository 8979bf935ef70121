#!/usr/bin/env bash
# Instructions Redis executes per create that ends in an offer, beside the
# minimal match script, counted by callgrind. Unlike the rates careline-bench
# prints, the counts are exact and do not move with the load of the machine.
#
#   loadtest/instructions.sh [creates]        (default 200)
#
# Needs valgrind, redis-server, redis-cli, redis-benchmark and a release build
# of careline-bench (cargo build --release -p careline-loadtest). It runs
# careline-bench once (100 agents, short phases) on a scratch redis-server to
# set up the bench tenant, frees the agents' capacity, snapshots the data, and
# replays creates against a redis-server under callgrind started from that
# snapshot: one client, back to back, each create a chat to a free agent.
set -euo pipefail

CREATES=${1:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$ROOT/target/release/careline-bench}
PREFIX='cl:{demo-health}:'
# The Redis settings Careline ships (the chart's Redis, `careline up`): set
# ZSET_MAX_LISTPACK_ENTRIES=128 to count with Redis' default instead.
REDIS_ARGS=(--zset-max-listpack-entries "${ZSET_MAX_LISTPACK_ENTRIES:-16}")
WORK=$(mktemp -d /tmp/careline-instructions.XXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in valgrind callgrind_control redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "instructions.sh: $tool not found" >&2; exit 1; }
done
[ -x "$BENCH" ] || { echo "instructions.sh: $BENCH missing: cargo build --release -p careline-loadtest" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_ready() {
  until redis-cli -p "$1" PING 2>/dev/null | grep -q PONG; do sleep 0.2; done
}

echo "== setting up the bench tenant (careline-bench, 100 agents) =="
SETUP_PORT=$(free_port)
redis-server --port "$SETUP_PORT" --save '' --appendonly no --dir "$WORK" "${REDIS_ARGS[@]}" >"$WORK/setup.log" 2>&1 &
PIDS+=($!)
wait_ready "$SETUP_PORT"
"$BENCH" --agents 100 --duration-secs 1 --latency-secs 1 --rate 100 \
  --redis-url "redis://127.0.0.1:$SETUP_PORT/" >"$WORK/bench.log" 2>&1
# Every agent free again: no load, no pending offers, no interactions.
redis-cli -p "$SETUP_PORT" EVAL "
for _, k in ipairs(redis.call('KEYS', KEYS[1] .. 'agent:*')) do
  redis.call('HSET', k, 'used:voice', 0, 'used:chat', 0, 'used:email', 0)
  for _, f in ipairs(redis.call('HKEYS', k)) do
    if string.sub(f, 1, 2) == 'o:' then redis.call('HDEL', k, f) end
  end
end
for _, pattern in ipairs({'holds:*', 'ix:*', 'q:*', 'idem:*'}) do
  for _, k in ipairs(redis.call('KEYS', KEYS[1] .. pattern)) do redis.call('DEL', k) end
end
redis.call('DEL', KEYS[1] .. 'outbox', KEYS[1] .. 'timers', KEYS[1] .. 'live')
return 1" 1 "$PREFIX" >/dev/null
redis-cli -p "$SETUP_PORT" --rdb "$WORK/dump.rdb" >/dev/null 2>&1
CREATE=$(redis-cli -p "$SETUP_PORT" FUNCTION LIST LIBRARYNAME 'careline_routing_*' | grep -o 'cl_[0-9a-f]*_create_interaction' | head -1)
MINIMAL=$(sed -n '/^const MINIMAL_MATCH_SCRIPT: &str = r#"/,/^"#;/p' "$ROOT/loadtest/src/server.rs" | sed '1d;$d')

# Instructions per call of "$@" (a redis-benchmark command), run $CREATES times.
measure() {
  local port out vg
  port=$(free_port)
  out="$WORK/callgrind.$port"
  # Only what Redis does for a request (read, run, reply queued) is counted:
  # its timer work (serverCron, 10 times per second of wall time, and
  # valgrind slows Redis down many times) grew with the machine's load.
  valgrind --tool=callgrind --toggle-collect=readQueryFromClient --callgrind-out-file="$out" redis-server --port "$port" \
    --dir "$WORK" --dbfilename dump.rdb --save '' --appendonly no "${REDIS_ARGS[@]}" >"$WORK/vg.$port.log" 2>&1 &
  vg=$!
  PIDS+=("$vg")
  wait_ready "$port"
  local sha=''
  if [ "$1" = minimal ]; then
    sha=$(redis-cli -p "$port" SCRIPT LOAD "$MINIMAL")
    set -- EVALSHA "$sha" 1 'bench:{ref}:'
  else
    set -- FCALL "$CREATE" 1 "$PREFIX" '' 'idem-__rand_int__' fingerprint 'ix_bench__rand_int__' \
      chat en general general 1 0 member context 0 86400 1000000000 '' 0
  fi
  # One warm-up call, then count only the measured ones.
  redis-cli -p "$port" "${@//__rand_int__/warmup}" >/dev/null
  callgrind_control -z "$vg" >/dev/null 2>&1
  redis-benchmark -p "$port" -n "$CREATES" -c 1 -r 1000000000 "$@" >/dev/null 2>&1
  callgrind_control -d "$vg" >/dev/null 2>&1
  redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  wait "$vg" 2>/dev/null || true
  local total
  total=$(cat "$out".* | grep -E '^(summary|totals):' | tail -1 | awk '{print $2}')
  echo $((total / CREATES))
}

echo "== counting under callgrind ($CREATES calls each, one client) =="
create=$(measure create)
minimal=$(measure minimal)
echo "instructions per create that ends in an offer: $create"
echo "instructions per minimal match script call:    $minimal"
awk -v c="$create" -v m="$minimal" 'BEGIN { printf "create / minimal: %.2fx the instructions (a rate of %.2fx)\n", c / m, m / c }'
