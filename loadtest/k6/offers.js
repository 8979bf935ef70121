// k6 load test of the public path with agents working: creates over the
// Router's gRPC API at an open-model rate, while AGENTS agents hold real
// presence sessions (bidirectional gRPC streams), accept every offer on their
// stream and resolve it over the Router. Beside it, in the same run and the
// same way, a bare tonic service (`careline-grpc-echo`) answers a health
// check at the same rate: what any gRPC call costs on this machine.
//
//   loadtest/k6/offers-tenant.sh 200 > /tmp/bench-offers.yaml
//   careline config apply -f /tmp/bench-offers.yaml       # against `careline up`
//   careline-grpc-echo 127.0.0.1:50099 &                   # cargo build --release -p careline-loadtest
//   k6 run -e RATE=2000 -e AGENTS=200 loadtest/k6/offers.js
//
// Phases (one run): the echo service at RATE for DURATION; then the agents log
// in (WARMUP); then creates at RATE for DURATION while the agents work.
//
// Env: RATE (iterations/s, default 2000), DURATION (default 20s), WARMUP
//      (default 10s), AGENTS (default 200, as many as the tenant file has),
//      ROUTER_ADDR / PRESENCE_ADDR / ECHO_ADDR (default 127.0.0.1:50051 /
//      :50052 / :50099, loopback only; ECHO_ADDR=off skips the echo phase),
//      VUS / MAX_VUS (pre-allocated / maximum VUs of each open-model phase,
//      default 100 / 1000), P99_MS (threshold on p99s, default 500).
//
// Metrics: grpc_req_duration per method (CreateInteraction, Resolve, Health
// Check); offer_on_stream_ms = arrival of the offer on the agent's stream
// minus the interaction's created_at_ms (Redis' clock; same machine): create
// -> offer delivered through the outbox relay, NATS and presence.

import grpc from 'k6/net/grpc';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { clearInterval, setInterval, setTimeout } from 'k6/timers';

const RATE = parseInt(__ENV.RATE || '2000', 10);
const DURATION_S = parseInt((__ENV.DURATION || '20s').replace(/s$/, ''), 10);
const WARMUP_S = parseInt((__ENV.WARMUP || '10s').replace(/s$/, ''), 10);
const AGENTS = parseInt(__ENV.AGENTS || '200', 10);
const ROUTER_ADDR = __ENV.ROUTER_ADDR || '127.0.0.1:50051';
const PRESENCE_ADDR = __ENV.PRESENCE_ADDR || '127.0.0.1:50052';
const ECHO_ADDR = __ENV.ECHO_ADDR || '127.0.0.1:50099';
const ECHO = ECHO_ADDR !== 'off';
const P99_MS = parseInt(__ENV.P99_MS || '500', 10);
const TENANT = 'bench-offers';
const API_KEY = 'bench-offers-key-000000000000000';
// Agents send a heartbeat this often (the tenant's TTL is 30 s).
const HEARTBEAT_MS = 5000;

const CREATE = 'careline.v1.Router/CreateInteraction';
const RESOLVE = 'careline.v1.Router/Resolve';
const SESSION = 'careline.v1.Presence/OpenAgentSession';
const HEALTH = 'grpc.health.v1.Health/Check';

for (const addr of [ROUTER_ADDR, PRESENCE_ADDR].concat(ECHO ? [ECHO_ADDR] : [])) {
  const host = addr.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    throw new Error(`addresses must be loopback, got ${addr}`);
  }
}

const offerOnStream = new Trend('offer_on_stream_ms', true);
const offersReceived = new Counter('offers_received');
const resolvedOk = new Counter('resolved');
const streamErrors = new Counter('agent_stream_errors');

const echoStart = 0;
const agentsStart = ECHO ? DURATION_S : 0;
const createsStart = agentsStart + WARMUP_S;
// Agents stay until the creates are over and their last offers worked off.
const agentsStayMs = (WARMUP_S + DURATION_S + 15) * 1000;

function openModel(exec, startS) {
  return {
    executor: 'constant-arrival-rate',
    exec,
    rate: RATE,
    timeUnit: '1s',
    duration: `${DURATION_S}s`,
    startTime: `${startS}s`,
    preAllocatedVUs: parseInt(__ENV.VUS || '100', 10),
    maxVUs: parseInt(__ENV.MAX_VUS || '1000', 10),
    gracefulStop: '10s',
  };
}

const scenarios = {
  agents: {
    executor: 'per-vu-iterations',
    exec: 'agent',
    vus: AGENTS,
    iterations: 1,
    startTime: `${agentsStart}s`,
    maxDuration: `${WARMUP_S + DURATION_S + 60}s`,
  },
  creates: openModel('create', createsStart),
};
if (ECHO) scenarios.echo = openModel('echo', echoStart);

export const options = {
  scenarios,
  thresholds: {
    checks: ['rate>0.99'],
    [`grpc_req_duration{name:/${CREATE}}`]: [`p(99)<${P99_MS}`],
    [`grpc_req_duration{name:/${RESOLVE}}`]: [`p(99)<${P99_MS}`],
    offer_on_stream_ms: [`p(99)<${P99_MS}`],
    ...(ECHO ? { [`grpc_req_duration{name:/${HEALTH}}`]: [`p(99)<${P99_MS}`] } : {}),
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
};

const apiParams = {
  metadata: { authorization: `Bearer ${API_KEY}` },
  timeout: '10s',
};

const client = new grpc.Client();
let connected = false;

function connectOnce(addr) {
  if (!connected) {
    client.connect(addr, { plaintext: true, reflect: true, timeout: '10s' });
    connected = true;
  }
}

export function setup() {
  return { runId: `${Date.now().toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}` };
}

// One member contact: a chat in English, offered at once when an agent is free.
export function create(data) {
  connectOnce(ROUTER_ADDR);
  const res = client.invoke(
    CREATE,
    {
      channel: 'CHANNEL_CHAT',
      queue_id: 'general',
      language: 'LANGUAGE_EN',
      member_ref: `k6-member-${__VU}-${__ITER % 1000}`,
      context: { reason: 'k6 offers benchmark' },
      idempotency_key: `k6-offers-${data.runId}-${__VU}-${__ITER}`,
    },
    apiParams,
  );
  check(res, { 'create: status OK': (r) => r.status === grpc.StatusOK });
}

// The bare service, called the same way.
export function echo() {
  connectOnce(ECHO_ADDR);
  const res = client.invoke(HEALTH, {}, { timeout: '10s' });
  check(res, {
    'echo: SERVING': (r) => r.status === grpc.StatusOK && r.message.status === 'SERVING',
  });
}

// One agent: logs in available, accepts every offer on its stream, resolves
// each assigned contact over the Router, sends heartbeats, and leaves after
// the creates are over.
export function agent() {
  const agentId = `a${exec.scenario.iterationInTest + 1}`;
  const presence = new grpc.Client();
  presence.connect(PRESENCE_ADDR, { plaintext: true, reflect: true, timeout: '10s' });
  const router = new grpc.Client();
  router.connect(ROUTER_ADDR, { plaintext: true, reflect: true, timeout: '10s' });

  const stream = new grpc.Stream(presence, SESSION);
  stream.on('data', (event) => {
    if (event.offer) {
      offersReceived.add(1);
      offerOnStream.add(Date.now() - Number(event.offer.interaction.createdAtMs));
      stream.write({ accept: { tenant_id: TENANT, offer_id: event.offer.offerId } });
    } else if (event.assigned) {
      router
        .asyncInvoke(
          RESOLVE,
          { interaction_id: event.assigned.interaction.id, agent_id: agentId, disposition: 'resolved' },
          apiParams,
        )
        .then((res) => {
          if (check(res, { 'resolve: status OK': (r) => r.status === grpc.StatusOK })) resolvedOk.add(1);
        });
    } else if (event.error) {
      streamErrors.add(1);
      console.warn(`${agentId}: ${JSON.stringify(event.error)}`);
    }
  });
  stream.on('error', (err) => {
    streamErrors.add(1);
    console.warn(`${agentId}: stream error ${JSON.stringify(err)}`);
  });
  stream.write({
    login: {
      tenants: [{ tenant_id: TENANT, agent_id: agentId, agent_key: `bench-agent-key-${agentId.slice(1)}` }],
      initial_state: 'AGENT_STATE_AVAILABLE',
    },
  });
  const beat = setInterval(() => stream.write({ heartbeat: {} }), HEARTBEAT_MS);
  setTimeout(() => {
    clearInterval(beat);
    stream.end();
    router.close();
  }, agentsStayMs);
}
