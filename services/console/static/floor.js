// The floor view: draws the snapshots the server pushes over server-sent
// events (/floor/events). One feed per tenant on the server is shared by every
// viewer; this page never polls. Words come from the page (#strings, EN/ES);
// numbers change in place so keyboard focus and screen-reader position stay.
'use strict';

(function () {
  const S = JSON.parse(document.getElementById('strings').textContent);
  const statusLine = document.getElementById('status');
  const SVG = 'http://www.w3.org/2000/svg';
  // How often "time in state" is redrawn (local clock; no request).
  const TICK_MS = 1000;
  let agents = [];

  function t(key, vars) {
    let text = S[key] || key;
    for (const name in vars || {}) text = text.replace('{' + name + '}', vars[name]);
    return text;
  }
  const pct = (v) => Math.round(v * 100) + '%';
  const secs = (v) => Math.round(v) + ' ' + S.seconds;
  const pad = (n) => String(n).padStart(2, '0');
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return (h > 0 ? h + ':' + pad(m) : String(m)) + ':' + pad(s % 60);
  }
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  // Rows keyed by `key(row)`: existing rows are updated in place.
  function fillTable(table, rows, key, cells) {
    const body = table.tBodies[0];
    const keep = new Set(rows.map(key));
    for (const tr of Array.from(body.rows)) if (!keep.has(tr.dataset.id)) tr.remove();
    rows.forEach((row, index) => {
      let tr = body.querySelector('tr[data-id="' + CSS.escape(key(row)) + '"]');
      const values = cells(row);
      if (!tr) {
        tr = document.createElement('tr');
        tr.dataset.id = key(row);
        values.forEach((_, i) => {
          const cell = document.createElement(i === 0 ? 'th' : 'td');
          if (i === 0) cell.scope = 'row';
          else cell.className = 'num';
          tr.appendChild(cell);
        });
      }
      if (body.rows[index] !== tr) body.insertBefore(tr, body.rows[index] || null);
      values.forEach((value, i) => {
        const cell = tr.cells[i];
        setText(cell, value.text === undefined ? String(value) : value.text);
        if (value.over !== undefined) cell.classList.toggle('over', value.over);
        if (value.key) cell.dataset.key = value.key;
      });
    });
  }

  // Today's figures shown as plain counts.
  const COUNTS = new Set([
    'answered', 'abandoned', 'surveys_answered', 'quality_reviews', 'coaching_marked',
  ]);

  function drawToday(today) {
    for (const dd of document.querySelectorAll('#today [data-kpi]')) {
      const key = dd.dataset.kpi;
      const value = today[key];
      let text;
      if (COUNTS.has(key)) text = String(value);
      else if (key === 'nps') text = today.surveys_answered ? String(Math.round(value)) : '–';
      else if (key === 'average_quality_score') {
        text = today.quality_reviews ? value.toFixed(1) : '–';
      } else if (key.endsWith('_secs')) text = secs(value);
      else text = pct(value);
      setText(dd, text);
    }
  }

  function drawQueues(snapshot) {
    document.getElementById('queues-unavailable').hidden = !snapshot.queues_unavailable;
    fillTable(document.getElementById('queues'), snapshot.queues, (q) => q.id, (q) => [
      q.name || q.id,
      { text: String(q.waiting), key: 'waiting' },
      { text: String(q.urgent_waiting), over: q.urgent_waiting > 0, key: 'urgent' },
      q.by_priority.join(' / '),
      {
        text: secs(q.oldest_wait_secs) + ' (' + secs(q.service_level_secs) + ')',
        over: q.oldest_wait_secs > q.service_level_secs,
      },
      String(q.agents_available),
      String(q.agents_busy),
      String(q.agents_away),
      pct(q.service_level),
    ]);
    const waiting = snapshot.queues.reduce((sum, q) => sum + q.waiting, 0);
    const urgent = snapshot.queues.reduce((sum, q) => sum + q.urgent_waiting, 0);
    setText(
      document.getElementById('queues-summary'),
      S.col_waiting + ': ' + waiting + ' · ' + S.col_urgent + ': ' + urgent,
    );
  }

  function drawAgents() {
    const now = Date.now();
    fillTable(document.getElementById('agents'), agents, (a) => a.agent_id, (a) => [
      a.agent_id,
      { text: S['state_' + a.state] || a.state, key: 'state' },
      a.reason,
      [a.load_voice, a.load_chat, a.load_email].join(' / '),
      a.since_ms ? duration(now - a.since_ms) : '–',
    ]);
  }

  // A small chart: `points` as (x, y), y from 0 to `top`.
  function chart(id, points, top, bars) {
    const box = document.getElementById(id);
    const width = 300;
    const height = 100;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-labelledby', id + '-caption ' + id + '-summary');
    if (points.length > 0) {
      const xs = points.map((p) => p[0]);
      const x0 = Math.min(...xs);
      const span = Math.max(1, Math.max(...xs) - x0);
      const y = (v) => height - 4 - (Math.min(v, top) / Math.max(top, 1e-9)) * (height - 8);
      if (bars) {
        const w = Math.max(2, width / points.length - 2);
        points.forEach((p, i) => {
          const rect = document.createElementNS(SVG, 'rect');
          rect.setAttribute('x', (i * width) / points.length);
          rect.setAttribute('y', y(p[1]));
          rect.setAttribute('width', w);
          rect.setAttribute('height', height - y(p[1]));
          rect.setAttribute('fill', '#0b5cad');
          svg.appendChild(rect);
        });
      } else {
        const line = document.createElementNS(SVG, 'polyline');
        line.setAttribute(
          'points',
          points.map((p) => ((p[0] - x0) / span) * width + ',' + y(p[1])).join(' '),
        );
        line.setAttribute('fill', 'none');
        line.setAttribute('stroke', '#0b5cad');
        line.setAttribute('stroke-width', '2');
        line.setAttribute('vector-effect', 'non-scaling-stroke');
        svg.appendChild(line);
      }
    }
    box.replaceChildren(svg);
  }

  function drawCharts(snapshot) {
    const waiting = snapshot.waiting_series;
    const top = Math.max(1, ...waiting.map((p) => p[1]));
    chart('chart-waiting', waiting, top, false);
    setText(
      document.getElementById('chart-waiting-summary'),
      waiting.length
        ? t('chart_waiting_summary', { now: waiting[waiting.length - 1][1], max: top })
        : S.no_data,
    );
    const levels = snapshot.service_level_series;
    chart('chart-sl', levels, 1, true);
    setText(
      document.getElementById('chart-sl-summary'),
      levels.length
        ? t('chart_sl_summary', {
            now: pct(levels[levels.length - 1][1]),
            min: pct(Math.min(...levels.map((p) => p[1]))),
          })
        : S.no_data,
    );
  }

  function draw(snapshot) {
    drawToday(snapshot.today);
    drawQueues(snapshot);
    agents = snapshot.agents;
    drawAgents();
    fillTable(document.getElementById('quality'), snapshot.quality, (q) => q.agent_id, (q) => [
      q.agent_id,
      String(q.reviews),
      q.reviews ? q.average_score.toFixed(1) : '–',
      String(q.coaching_marked),
    ]);
    document.getElementById('quality-empty').hidden = snapshot.quality.length > 0;
    drawCharts(snapshot);
  }

  function connect() {
    const source = new EventSource('/floor/events');
    source.addEventListener('floor', (event) => {
      setText(statusLine, S.live);
      draw(JSON.parse(event.data));
    });
    source.addEventListener('open', () => setText(statusLine, S.live));
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (session over) or ended by the server: back to sign-in.
        setText(statusLine, S.session_ended);
        window.setTimeout(() => window.location.assign('/floor'), 2000);
      } else {
        setText(statusLine, S.reconnecting);
      }
    });
  }

  window.setInterval(drawAgents, TICK_MS);
  connect();
})();
