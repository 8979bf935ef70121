#!/usr/bin/env bash
# 1 vs 500 tenants on the public path (issue 13), back to back on one stack:
# a release `careline up` (redis-server and nats-server as its children, every
# service in its process), every tenant applied through `careline config apply`.
#
#   cargo build --release -p careline -p careline-loadtest --bins
#   source scripts/lib.sh && ensure_k6
#   loadtest/k6/offers-tenants.sh            # about 10 minutes; results under $OUT
#
# Steps: tenant bench-offers (200 agents) -> idle sample; + bench-timeout (the
# probe's tenant, chat offer timeout 1 s) -> k6 run "1 tenant"; + 498 tenants
# of 4 agents (500 in all) -> idle sample; k6 run "500, load on one" (all
# creates and agents in bench-offers); k6 run "500, spread" (the same rate and
# agents over bench-offers-1..50). Every k6 run also runs the echo phase and the
# timeout probe. Idle sample: CPU ms per second (utime + stime from
# /proc/<pid>/stat over IDLE_SECS) and VmRSS of the careline process (router,
# presence and the other services), its redis-server and its nats-server.
#
# Env: RATE (300), DURATION (20s), WARMUP (20s), AGENTS (200), PROBE_AGENTS (4),
#      IDLE_SECS (20), TARGET (target/release; CARGO_TARGET_DIR's release if set),
#      OUT (/tmp/offers-tenants: data dirs, logs, k6 summaries), ports
#      REDIS_PORT (6391) NATS_PORT (4231) ECHO_PORT (50199); the services
#      listen on `careline up`'s default ports (router 50051, presence 50052).
#      Loopback only; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE="${RATE:-300}"
DURATION="${DURATION:-20s}"
WARMUP="${WARMUP:-20s}"
AGENTS="${AGENTS:-200}"
PROBE_AGENTS="${PROBE_AGENTS:-4}"
IDLE_SECS="${IDLE_SECS:-20}"
TARGET="${TARGET:-${CARGO_TARGET_DIR:-target}/release}"
OUT="${OUT:-/tmp/offers-tenants}"
REDIS_PORT="${REDIS_PORT:-6391}"
NATS_PORT="${NATS_PORT:-4231}"
ROUTER_PORT=50051
PRESENCE_PORT=50052
ECHO_PORT="${ECHO_PORT:-50199}"
# Tenants besides bench-offers and bench-timeout, and how many of them take
# the load in the spread run.
IDLE_TENANTS=498
SPREAD_TENANTS=50
SPREAD_AGENTS_EACH=4
# A bounded wait for each service to answer, and for each k6 run.
READY_SECS=60
K6_TIMEOUT_SECS=600

rm -rf "$OUT"
mkdir -p "$OUT/tenants"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
loadtest/k6/offers-tenant.sh "$AGENTS" > "$OUT/tenants/bench-offers.yaml"
OFFER_TIMEOUT_SECS=1 loadtest/k6/offers-tenant.sh "$PROBE_AGENTS" bench-timeout \
  > "$OUT/tenants/bench-timeout.yaml"
loadtest/k6/offers-tenant.sh "$SPREAD_AGENTS_EACH" --tenants "$IDLE_TENANTS" "$OUT/tenants/many"

"$TARGET/careline" up --data-dir "$OUT/data" --redis-port "$REDIS_PORT" --nats-port "$NATS_PORT" \
  --tenant "$OUT/tenants/bench-offers.yaml" > "$OUT/careline.log" 2>&1 &
pids+=($!); careline_pid=$!
"$TARGET/careline-grpc-echo" "127.0.0.1:$ECHO_PORT" > "$OUT/echo.log" 2>&1 &
pids+=($!)
export CARELINE_NATS_URL="nats://127.0.0.1:$NATS_PORT"

# Polls `$@` until it succeeds, at most READY_SECS.
wait_for() {
  local deadline=$((SECONDS + READY_SECS))
  until "$@" > /dev/null 2>&1; do
    if ((SECONDS > deadline)); then echo "not ready: $*; logs in $OUT" >&2; exit 1; fi
    sleep 0.5
  done
}
for port in "$ROUTER_PORT" "$PRESENCE_PORT"; do
  wait_for grpcurl -plaintext "127.0.0.1:$port" grpc.health.v1.Health/Check
done
# The echo serves reflection v1 only, which grpcurl does not ask for.
wait_for grep -q listening "$OUT/echo.log"
redis_pid=$(pgrep -P "$careline_pid" redis-server)
nats_pid=$(pgrep -P "$careline_pid" nats-server)

apply() {
  "$TARGET/careline" config apply -f "$1" --wait-secs 30 > /dev/null
}

# CPU ms per second and resident MiB of each process over IDLE_SECS.
idle_sample() {
  local label="$1" names=(careline redis nats) procs=("$careline_pid" "$redis_pid" "$nats_pid")
  local tick before=() after=()
  tick=$(getconf CLK_TCK)
  for pid in "${procs[@]}"; do before+=("$(awk '{print $14 + $15}' "/proc/$pid/stat")"); done
  sleep "$IDLE_SECS"
  for pid in "${procs[@]}"; do after+=("$(awk '{print $14 + $15}' "/proc/$pid/stat")"); done
  for i in "${!procs[@]}"; do
    local rss
    rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/${procs[$i]}/status")
    printf '%s\t%s\tcpu_ms_per_s=%.1f\trss_mib=%s\n' "$label" "${names[$i]}" \
      "$(echo "(${after[$i]} - ${before[$i]}) * 1000 / $tick / $IDLE_SECS" | bc -l)" "$rss"
  done | tee -a "$OUT/idle.tsv"
}

k6_run() {
  local label="$1"; shift
  echo "== k6: $label ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
  timeout "$K6_TIMEOUT_SECS" k6 run -q "$@" -e RATE="$RATE" -e DURATION="$DURATION" \
    -e WARMUP="$WARMUP" -e AGENTS="$AGENTS" -e PROBE_AGENTS="$PROBE_AGENTS" \
    -e ROUTER_ADDR="127.0.0.1:$ROUTER_PORT" -e PRESENCE_ADDR="127.0.0.1:$PRESENCE_PORT" \
    -e ECHO_ADDR="127.0.0.1:$ECHO_PORT" --summary-export "$OUT/k6-$label.json" \
    loadtest/k6/offers.js 2>&1 | tee "$OUT/k6-$label.txt" || true
}

sleep 5 # past start-up
idle_sample "1 tenant"
apply "$OUT/tenants/bench-timeout.yaml"
k6_run 1-tenant

start=$SECONDS
for file in "$OUT"/tenants/many/*.yaml; do apply "$file"; done
echo "applied $IDLE_TENANTS more tenants in $((SECONDS - start)) s, one \`careline config apply\` each"
idle_sample "500 tenants"
k6_run 500-load-on-one
k6_run 500-spread -e TENANTS="$SPREAD_TENANTS"
echo "== done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT"
