#!/usr/bin/env bash
# Prints the tenant `loadtest/k6/offers.js` runs against: N agents (default
# 200) who serve queue `general` in English with chat capacity 5, open every
# hour, wrap-up 0 (capacity is free again at once), rate limits above the
# test's rate. Keys (local use only): API key <id>-key-000000000000000
# (admin: the agents resolve through it, naming themselves), agent i's key
# bench-agent-key-<i>. The id is `bench-offers` unless given.
#
#   loadtest/k6/offers-tenant.sh 200 > /tmp/bench-offers.yaml
#   careline config apply -f /tmp/bench-offers.yaml
#
# Many tenants: `--tenants T DIR` writes DIR/bench-offers-<t>.yaml for t in
# 1..T, N agents each (offers.js with TENANTS=T spreads its agents and creates
# over them); and the tenant of the timeout probe (offers.js PROBE_AGENTS):
#
#   loadtest/k6/offers-tenant.sh 4 --tenants 499 /tmp/bench-tenants
#   OFFER_TIMEOUT_SECS=1 loadtest/k6/offers-tenant.sh 4 bench-timeout > /tmp/bench-timeout.yaml
#
# Env: OFFER_TIMEOUT_SECS (chat offer timeout, default 30).
set -euo pipefail
agents="${1:-200}"
if [[ "${2:-}" == --tenants ]]; then
  tenants="${3:?--tenants needs a count and a directory}"
  dir="${4:?--tenants needs a count and a directory}"
  mkdir -p "$dir"
  for t in $(seq 1 "$tenants"); do
    "$0" "$agents" "bench-offers-$t" > "$dir/bench-offers-$t.yaml"
  done
  exit 0
fi
id="${2:-bench-offers}"
offer_timeout="${OFFER_TIMEOUT_SECS:-30}"
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat <<YAML
id: $id
name: k6 offers benchmark
time_zone: UTC
languages: [en]
after_hours_message:
  en: "Closed."
contact_email: help@bench-offers.example
api_keys:
  - id: bench
    sha256: $(sha "$id-key-000000000000000")
    scopes: [admin]
limits:
  creates_per_sec: 20000
  creates_burst: 40000
  calls_per_sec: 40000
  calls_burst: 80000
routing:
  strategy: longest_idle
  urgent_queue: general
  offer_timeout_secs: { voice: 30, chat: $offer_timeout, email: 30 }
  capacity: { voice: 1, chat: 5, email: 5 }
  wrap_up_secs: 0
  heartbeat_ttl_secs: 30
queues:
  - id: general
    name: General
    skills:
      - { skill: member_services, min_proficiency: 1 }
    service_level_secs: 30
agents:
YAML
for i in $(seq 1 "$agents"); do
  cat <<YAML
  - id: a$i
    key_sha256: $(sha "bench-agent-key-$i")
    skills: { member_services: 5 }
    languages: [en]
YAML
done
