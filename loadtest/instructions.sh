#!/usr/bin/env bash
# Instructions Redis executes per create that ends in an offer, beside the
# same create's commands replayed with no decision logic (its floor) and the
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
# snapshot: one client, back to back, each create a chat to a free agent. Then
# the floor and the minimal script, the same way.
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
# Arguments of a create: a chat in English to queue `general`, idempotency
# key and interaction id made unique per call by redis-benchmark.
CREATE_ARGS=('' 'idem-__rand_int__' fingerprint 'ix_bench__rand_int__' chat en general general 1 0 member
  context 0 86400 1000000000 '' 0)

# The floor: one create's commands, captured with MONITOR (after the
# snapshot), replayed by a function with no decision logic at all, each call
# with its own interaction id and idempotency key. No script that writes what
# a create writes, with these commands, costs less. (Its offer always goes to
# the captured agent, where a create's goes to the longest idle of 100.)
redis-cli -p "$SETUP_PORT" MONITOR >"$WORK/monitor.log" &
MONITOR_PID=$!
PIDS+=("$MONITOR_PID")
until [ -s "$WORK/monitor.log" ]; do redis-cli -p "$SETUP_PORT" PING >/dev/null; sleep 0.1; done
CAPTURE_ARGS=("${CREATE_ARGS[@]//__rand_int__/capture}")
redis-cli -p "$SETUP_PORT" FCALL "$CREATE" 1 "$PREFIX" "${CAPTURE_ARGS[@]}" >/dev/null
until grep -q '"XADD"' "$WORK/monitor.log"; do sleep 0.1; done
kill "$MONITOR_PID"
python3 - "$WORK/monitor.log" "${CAPTURE_ARGS[1]}" "${CAPTURE_ARGS[3]}" >"$WORK/floor.lua" <<'PY'
import re, sys
log, idem, ix = sys.argv[1:4]
def unquote(token):
    # redis-cli prints arguments as C-style quoted strings (sdscatrepr).
    out, i = bytearray(), 0
    while i < len(token):
        c = token[i]
        if c == '\\':
            nxt = token[i + 1]
            if nxt == 'x':
                out.append(int(token[i + 2:i + 4], 16)); i += 4; continue
            out += {'n': b'\n', 'r': b'\r', 't': b'\t', 'a': b'\a', 'b': b'\b'}.get(nxt, nxt.encode())
            i += 2; continue
        out += c.encode(); i += 1
    return bytes(out)
def lua_literal(raw):
    return "'" + ''.join(chr(b) if 32 <= b < 127 and b not in (39, 92) else '\\%d' % b for b in raw) + "'"
def lua_arg(raw):
    # The captured ids become this call's own.
    parts = []
    for piece in re.split(b'(' + re.escape(idem.encode()) + b'|' + re.escape(ix.encode()) + b')', raw):
        if piece == idem.encode(): parts.append('idem')
        elif piece == ix.encode(): parts.append('id')
        elif piece: parts.append(lua_literal(piece))
    return ' .. '.join(parts) or "''"
calls = []
for line in open(log, encoding='latin-1'):
    if ' lua] ' not in line: continue
    args = [unquote(t) for t in re.findall(r'"((?:[^"\\]|\\.)*)"', line.split(' lua] ', 1)[1])]
    calls.append('  redis.call(' + ', '.join(lua_arg(a) for a in args) + ')')
print('#!lua name=careline_floor')
print("redis.register_function('careline_floor', function(keys, args)")
print('  local idem, id = args[2], args[4]')
print('\n'.join(calls))
print("  return {'ok', id, 0, 0}")
print('end)')
PY

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
  case "$1" in
    minimal)
      sha=$(redis-cli -p "$port" SCRIPT LOAD "$MINIMAL")
      set -- EVALSHA "$sha" 1 'bench:{ref}:' ;;
    floor)
      redis-cli -p "$port" -x FUNCTION LOAD <"$WORK/floor.lua" >/dev/null
      set -- FCALL careline_floor 1 "$PREFIX" "${CREATE_ARGS[@]}" ;;
    *) set -- FCALL "$CREATE" 1 "$PREFIX" "${CREATE_ARGS[@]}" ;;
  esac
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
floor=$(measure floor)
minimal=$(measure minimal)
echo "instructions per create that ends in an offer: $create"
echo "instructions per call of its commands alone:   $floor  ($(grep -c 'redis.call' "$WORK/floor.lua") commands, no decision logic)"
echo "instructions per minimal match script call:    $minimal"
awk -v c="$create" -v f="$floor" -v m="$minimal" 'BEGIN {
  printf "create / minimal: %.2fx the instructions (a rate of %.2fx)\n", c / m, m / c
  printf "commands alone / minimal: %.2fx (a rate of %.2fx: the most any script making these writes with these commands can reach)\n", f / m, m / f
  printf "decision logic: %d instructions per create, %.0f%% of it\n", c - f, 100 * (c - f) / c
}'
