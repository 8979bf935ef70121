// k6 load test of the chat-gateway's member WebSocket (docs/chat-protocol.md, v1), against a
// running `careline up` (scripts/up.sh), which serves the demo widget key on 127.0.0.1:8090.
//
//   source scripts/lib.sh && ensure_k6        # k6 into .careline/bin
//   k6 run -e VUS=200 -e DURATION=60s loadtest/k6/chat.js
//
// Env: GATEWAY (default http://127.0.0.1:8090, loopback only), KEY (default demo-widget-key),
//      ORIGIN (the page origin sent, default http://127.0.0.1:8090: one of the demo widget's
//      allowed_origins), VUS (concurrent members, default 100), DURATION (default 30s),
//      MESSAGES (messages per chat after the first, default 10), PAUSE_MS (between two
//      messages, default 1000: members type), P99_MS (threshold on the ack p99, default 250).
//
// One iteration = one member: open the socket, `start` a chat with a first message (the router
// creates a chat interaction; with no agent logged in it stays queued), send MESSAGES messages,
// each with a fresh client_id, and wait for each to come back as a `message` frame from the
// member with that client_id (the gateway's acknowledgement that it is in the transcript), then
// `end`. `chat_ack_ms` is send -> acknowledgement; `chat_start_ms` is start -> `started`.

import ws from 'k6/ws';
import { check, fail } from 'k6';
import { Counter, Trend } from 'k6/metrics';

const GATEWAY = __ENV.GATEWAY || 'http://127.0.0.1:8090';
const KEY = __ENV.KEY || 'demo-widget-key';
const ORIGIN = __ENV.ORIGIN || 'http://127.0.0.1:8090';
const VUS = parseInt(__ENV.VUS || '100', 10);
const DURATION = __ENV.DURATION || '30s';
const MESSAGES = parseInt(__ENV.MESSAGES || '10', 10);
const PAUSE_MS = parseInt(__ENV.PAUSE_MS || '1000', 10);
const P99_MS = parseInt(__ENV.P99_MS || '250', 10);
// A chat that has not finished in this long is counted as failed (the socket is closed).
const CHAT_TIMEOUT_MS = 30000 + MESSAGES * PAUSE_MS * 2;

const URL = GATEWAY.replace(/^http/, 'ws').replace(/\/$/, '') + '/v1/chat/ws';

const ackMs = new Trend('chat_ack_ms', true);
const startMs = new Trend('chat_start_ms', true);
const errorFrames = new Counter('chat_error_frames');
const chatsDone = new Counter('chat_chats_completed');

export const options = {
  scenarios: {
    members: { executor: 'constant-vus', vus: VUS, duration: DURATION },
  },
  thresholds: {
    chat_ack_ms: [`p(99)<${P99_MS}`],
    chat_error_frames: ['count==0'],
    checks: ['rate>0.99'],
  },
};

function clientId(n) {
  return `k6-${__VU}-${__ITER}-${n}`;
}

export default function () {
  let sent = 0;
  const pending = {};
  let startedAt = 0;
  let completed = false;

  const response = ws.connect(URL, { headers: { Origin: ORIGIN } }, function (socket) {
    function sendNext() {
      if (sent >= MESSAGES) {
        socket.send(JSON.stringify({ type: 'end' }));
        completed = true;
        socket.close();
        return;
      }
      sent += 1;
      const id = clientId(sent);
      pending[id] = Date.now();
      socket.send(JSON.stringify({ type: 'message', client_id: id, text: `load test message ${sent}` }));
    }

    socket.on('open', function () {
      startedAt = Date.now();
      socket.send(
        JSON.stringify({
          type: 'start',
          key: KEY,
          language: __VU % 2 === 0 ? 'es' : 'en',
          topic: 'billing',
          text: 'I have a question about my bill',
          client_id: clientId(0),
        }),
      );
    });

    socket.on('message', function (data) {
      const frame = JSON.parse(data);
      if (frame.type === 'started') {
        startMs.add(Date.now() - startedAt);
        sendNext();
      } else if (frame.type === 'message' && frame.from === 'member' && pending[frame.client_id]) {
        ackMs.add(Date.now() - pending[frame.client_id]);
        delete pending[frame.client_id];
        socket.setTimeout(sendNext, PAUSE_MS);
      } else if (frame.type === 'error') {
        errorFrames.add(1, { code: frame.code });
      }
    });

    socket.on('close', function () {
      if (completed) chatsDone.add(1);
    });

    socket.setTimeout(function () {
      socket.close();
    }, CHAT_TIMEOUT_MS);
  });

  if (!check(response, { 'upgraded (101)': (r) => r && r.status === 101 })) {
    fail(`WebSocket upgrade refused: ${response && response.status}`);
  }
  check(completed, { 'chat completed': (done) => done === true });
}
