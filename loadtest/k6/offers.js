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
// Many tenants: with TENANTS=T (> 1) the agents and creates are spread round
// robin over tenants bench-offers-1..T (`offers-tenant.sh A --tenants T DIR`,
// A >= AGENTS / T agents each). Timeout probe: with PROBE_AGENTS=P (> 0), P
// agents of tenant bench-timeout (short chat offer timeout) log in with the
// others and never answer; contacts are created there at PROBE_RATE from the
// warm-up on. Each timed-out offer gives offer_timeout_late_ms = arrival of its
// revocation on the stream minus the offer's deadline_ms, tagged by what the
// other tenants do meanwhile: phase:logins (first half of the warm-up, the
// agents log in), phase:quiet (second half), phase:creates (the creates); the
// agent abandons the contact and makes itself available again.
//
// Env: RATE (iterations/s, default 2000), DURATION (default 20s), WARMUP
//      (default 10s), AGENTS (default 200, as many as the tenant file has),
//      ROUTER_ADDR / PRESENCE_ADDR / ECHO_ADDR (default 127.0.0.1:50051 /
//      :50052 / :50099, loopback only; ECHO_ADDR=off skips the echo phase),
//      VUS / MAX_VUS (pre-allocated / maximum VUs of each open-model phase,
//      default 100 / 1000), P99_MS (threshold on p99s, default 500),
//      TENANTS (default 1: tenant bench-offers), PROBE_AGENTS (default 0: no
//      probe), PROBE_RATE (probe contacts/s, default 2).
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
const TENANTS = parseInt(__ENV.TENANTS || '1', 10);
const TENANT_IDS =
  TENANTS > 1 ? Array.from({ length: TENANTS }, (_, t) => `bench-offers-${t + 1}`) : ['bench-offers'];
const PROBE_AGENTS = parseInt(__ENV.PROBE_AGENTS || '0', 10);
const PROBE_RATE = parseInt(__ENV.PROBE_RATE || '2', 10);
const PROBE_TENANT = 'bench-timeout';
// Agents send a heartbeat this often (the tenant's TTL is 30 s).
const HEARTBEAT_MS = 5000;

const CREATE = 'careline.v1.Router/CreateInteraction';
const RESOLVE = 'careline.v1.Router/Resolve';
const ABANDON = 'careline.v1.Router/Abandon';
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
const timeoutLate = new Trend('offer_timeout_late_ms', true);

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
if (PROBE_AGENTS > 0) {
  scenarios.probeAgents = {
    executor: 'per-vu-iterations',
    exec: 'probeAgent',
    vus: PROBE_AGENTS,
    iterations: 1,
    startTime: `${agentsStart}s`,
    maxDuration: `${WARMUP_S + DURATION_S + 60}s`,
  };
  // From a second after the agents start until the creates end.
  scenarios.probe = {
    ...openModel('probe', agentsStart + 1),
    rate: PROBE_RATE,
    duration: `${WARMUP_S + DURATION_S - 1}s`,
    preAllocatedVUs: 2,
    maxVUs: 20,
  };
}

export const options = {
  scenarios,
  thresholds: {
    checks: ['rate>0.99'],
    [`grpc_req_duration{name:/${CREATE}}`]: [`p(99)<${P99_MS}`],
    [`grpc_req_duration{name:/${RESOLVE}}`]: [`p(99)<${P99_MS}`],
    offer_on_stream_ms: [`p(99)<${P99_MS}`],
    ...(ECHO ? { [`grpc_req_duration{name:/${HEALTH}}`]: [`p(99)<${P99_MS}`] } : {}),
    // Listed so the summary shows the probe in each phase.
    ...(PROBE_AGENTS > 0
      ? {
          'offer_timeout_late_ms{phase:logins}': [`p(99)<${P99_MS}`],
          'offer_timeout_late_ms{phase:quiet}': [`p(99)<${P99_MS}`],
          'offer_timeout_late_ms{phase:creates}': [`p(99)<${P99_MS}`],
        }
      : {}),
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
};

// Calls with a tenant's admin key (`offers-tenant.sh`: <id>-key-000000000000000).
function apiParams(tenant) {
  return { metadata: { authorization: `Bearer ${tenant}-key-000000000000000` }, timeout: '10s' };
}

// One connection per address and VU: k6 hands a VU from one scenario to the
// next, so a VU that called the echo may go on to create.
const clients = {};

function clientFor(addr) {
  if (!clients[addr]) {
    clients[addr] = new grpc.Client();
    clients[addr].connect(addr, { plaintext: true, reflect: true, timeout: '10s' });
  }
  return clients[addr];
}

export function setup() {
  const now = Date.now();
  return {
    runId: `${now.toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}`,
    quietFromMs: now + (agentsStart + WARMUP_S / 2) * 1000,
    createsFromMs: now + createsStart * 1000,
  };
}

// One member contact in `tenant`: a chat in English, offered at once when an agent is free.
function createIn(tenant, data) {
  const res = clientFor(ROUTER_ADDR).invoke(
    CREATE,
    {
      channel: 'CHANNEL_CHAT',
      queue_id: 'general',
      language: 'LANGUAGE_EN',
      member_ref: `k6-member-${__VU}-${__ITER % 1000}`,
      context: { reason: 'k6 offers benchmark' },
      idempotency_key: `k6-offers-${data.runId}-${exec.scenario.name}-${__VU}-${__ITER}`,
    },
    apiParams(tenant),
  );
  check(res, { 'create: status OK': (r) => r.status === grpc.StatusOK });
}

// The creates, round robin over the tenants.
export function create(data) {
  createIn(TENANT_IDS[exec.scenario.iterationInTest % TENANTS], data);
}

// A contact for the probe's agents, who let every offer time out.
export function probe(data) {
  createIn(PROBE_TENANT, data);
}

// The bare service, called the same way.
export function echo() {
  const res = clientFor(ECHO_ADDR).invoke(HEALTH, {}, { timeout: '10s' });
  check(res, {
    'echo: SERVING': (r) => r.status === grpc.StatusOK && r.message.status === 'SERVING',
  });
}

// One agent of `tenant`: opens a presence session, logs in available, hands
// every event to `onEvent(event, stream, router)`, sends heartbeats, and leaves
// after the creates are over.
function agentSession(tenant, agentId, onEvent) {
  const presence = new grpc.Client();
  presence.connect(PRESENCE_ADDR, { plaintext: true, reflect: true, timeout: '10s' });
  const router = new grpc.Client();
  router.connect(ROUTER_ADDR, { plaintext: true, reflect: true, timeout: '10s' });

  const stream = new grpc.Stream(presence, SESSION);
  stream.on('data', (event) => {
    if (event.error) {
      streamErrors.add(1);
      console.warn(`${tenant}/${agentId}: ${JSON.stringify(event.error)}`);
    } else {
      onEvent(event, stream, router);
    }
  });
  stream.on('error', (err) => {
    streamErrors.add(1);
    console.warn(`${tenant}/${agentId}: stream error ${JSON.stringify(err)}`);
  });
  stream.write({
    login: {
      tenants: [{ tenant_id: tenant, agent_id: agentId, agent_key: `bench-agent-key-${agentId.slice(1)}` }],
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

// A working agent: accepts every offer on its stream and resolves each
// assigned contact over the Router. Agent k (0-based) is a<k / TENANTS + 1>
// of tenant k % TENANTS.
export function agent() {
  const k = exec.scenario.iterationInTest;
  const tenant = TENANT_IDS[k % TENANTS];
  const agentId = `a${Math.floor(k / TENANTS) + 1}`;
  agentSession(tenant, agentId, (event, stream, router) => {
    if (event.offer) {
      offersReceived.add(1);
      offerOnStream.add(Date.now() - Number(event.offer.interaction.createdAtMs));
      stream.write({ accept: { tenant_id: tenant, offer_id: event.offer.offerId } });
    } else if (event.assigned) {
      router
        .asyncInvoke(
          RESOLVE,
          { interaction_id: event.assigned.interaction.id, agent_id: agentId, disposition: 'resolved' },
          apiParams(tenant),
        )
        .then((res) => {
          if (check(res, { 'resolve: status OK': (r) => r.status === grpc.StatusOK })) resolvedOk.add(1);
        });
    }
  });
}

// A probe agent: never answers an offer; when it times out, records how late
// the revocation came, abandons the contact and becomes available again (a
// missed offer sets the agent away).
export function probeAgent(data) {
  const agentId = `a${exec.scenario.iterationInTest + 1}`;
  const deadlines = {};
  agentSession(PROBE_TENANT, agentId, (event, stream, router) => {
    const available = { set_state: { tenant_id: PROBE_TENANT, state: 'AGENT_STATE_AVAILABLE' } };
    if (event.offer) {
      deadlines[event.offer.offerId] = Number(event.offer.deadlineMs);
    } else if (event.revoked && event.revoked.reason === 'timed_out') {
      const now = Date.now();
      const deadline = deadlines[event.revoked.offerId];
      delete deadlines[event.revoked.offerId];
      if (deadline) {
        const phase = now >= data.createsFromMs ? 'creates' : now >= data.quietFromMs ? 'quiet' : 'logins';
        timeoutLate.add(now - deadline, { phase });
      }
      router.asyncInvoke(ABANDON, { interaction_id: event.revoked.interactionId }, apiParams(PROBE_TENANT));
      stream.write(available);
    } else if (event.stateChanged && event.stateChanged.state === 'AGENT_STATE_AWAY') {
      stream.write(available);
    }
  });
}
