// k6 load test of the Router's gRPC API, end to end (k6 -> gRPC -> API-key
// auth -> Redis script; the outbox relay to NATS runs alongside), against a
// running `careline up` (scripts/up.sh).
//
//   source scripts/lib.sh && ensure_k6        # k6 into .careline/bin
//   k6 run -e RATE=500 -e DURATION=30s loadtest/k6/router.js
//
// Env: RATE (iterations/s, default 500), DURATION (default 30s),
//      ROUTER_ADDR (default 127.0.0.1:50051, loopback only),
//      API_KEY (default: the demo tenant's key), QUEUE_ID (default general),
//      VUS / MAX_VUS (pre-allocated / maximum VUs, default 50 / 400),
//      P99_MS (threshold on each method's p99 in ms, default 250),
//      ATTRIBUTES (entries in context.attributes, default 3).
//
// One iteration = one CreateInteraction (email, queue general, unique
// idempotency key). Every 10th iteration per VU also calls GetQueueStats and
// replays the key it just used, expecting `replayed: true` and the same id.
// With no agents logged in every interaction stays queued: this measures
// intake and queueing, not matching or offers.

import grpc from 'k6/net/grpc';
import { check } from 'k6';

const RATE = parseInt(__ENV.RATE || '500', 10);
const DURATION = __ENV.DURATION || '30s';
const ADDR = __ENV.ROUTER_ADDR || '127.0.0.1:50051';
const API_KEY = __ENV.API_KEY || 'demo-health-key-0000000000000000';
const QUEUE_ID = __ENV.QUEUE_ID || 'general';
const P99_MS = parseInt(__ENV.P99_MS || '250', 10);
// Entries in context.attributes (replays must be recognised whatever their
// order; see loadtest/README.md).
const ATTRIBUTES = parseInt(__ENV.ATTRIBUTES || '3', 10);

const CREATE = 'careline.v1.Router/CreateInteraction';
const STATS = 'careline.v1.Router/GetQueueStats';

// Loopback targets only: this test writes to whatever Router it reaches.
const host = ADDR.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
  throw new Error(`ROUTER_ADDR must be a loopback address, got ${ADDR}`);
}

export const options = {
  scenarios: {
    create_interactions: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: parseInt(__ENV.VUS || '50', 10),
      maxVUs: parseInt(__ENV.MAX_VUS || '400', 10),
      gracefulStop: '10s',
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    // Listed per method so the end-of-test summary shows each one's p(99).
    [`grpc_req_duration{name:/${CREATE}}`]: [`p(99)<${P99_MS}`],
    [`grpc_req_duration{name:/${STATS}}`]: [`p(99)<${P99_MS}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

const params = {
  metadata: { authorization: `Bearer ${API_KEY}` },
  timeout: '10s',
};

const client = new grpc.Client();
let connected = false;
let errorsLogged = 0;

// Logs the first few failed calls of each VU (status and message).
function logFailure(what, res) {
  if (res.status !== grpc.StatusOK && errorsLogged < 3) {
    errorsLogged += 1;
    console.warn(`${what}: status ${res.status} ${JSON.stringify(res.error)}`);
  }
}

// One id per run, shared by every VU, so idempotency keys never collide with
// an earlier run against the same data directory.
export function setup() {
  return { runId: __ENV.RUN_ID || `${Date.now().toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}` };
}

function createRequest(key) {
  const attributes = { source: 'k6' };
  for (let i = 1; i < ATTRIBUTES; i++) attributes[`attr${i}`] = String(__VU);
  return {
    channel: 'CHANNEL_EMAIL', // accepted at any hour (voice is refused after hours)
    queue_id: QUEUE_ID,
    language: 'LANGUAGE_EN',
    member_ref: `k6-member-${__VU}-${__ITER % 1000}`,
    context: {
      reason: 'billing_question',
      summary: 'k6 load test',
      attributes,
    },
    idempotency_key: key,
  };
}

export default function (data) {
  if (!connected) {
    client.connect(ADDR, { plaintext: true, reflect: true, timeout: '10s' });
    connected = true;
  }

  const key = `k6-${data.runId}-${__VU}-${__ITER}`;
  const res = client.invoke(CREATE, createRequest(key), params);
  logFailure('create', res);
  const interaction = res.message && res.message.interaction;
  const id = interaction && interaction.id;
  check(res, {
    'create: status OK': (r) => r.status === grpc.StatusOK,
    'create: has interaction id': () => typeof id === 'string' && id.length > 0,
    'create: not replayed': (r) => !!r.message && !r.message.replayed,
  });

  if (__ITER % 10 === 0) {
    const stats = client.invoke(STATS, { queue_id: QUEUE_ID }, params);
    logFailure('stats', stats);
    check(stats, {
      'stats: status OK': (r) => r.status === grpc.StatusOK,
      'stats: has the queue': (r) =>
        !!r.message && Array.isArray(r.message.queues) && r.message.queues.some((q) => q.queueId === QUEUE_ID),
    });

    const again = client.invoke(CREATE, createRequest(key), params);
    logFailure('replay', again);
    check(again, {
      'replay: status OK': (r) => r.status === grpc.StatusOK,
      'replay: replayed === true': (r) => !!r.message && r.message.replayed === true,
      'replay: same interaction id': (r) =>
        !!r.message && !!r.message.interaction && !!id && r.message.interaction.id === id,
    });
  }
}
