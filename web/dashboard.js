// The live dashboard: polls /dashboard/stats once a second (the admin key travels in an HttpOnly
// cookie set by /dashboard?key=…, or not at all from loopback) and draws what it gets. No
// dependencies: two line charts on canvas and a few tables.

const COLORS = ['#3b6fd8', '#2e9e5b', '#d08a1e', '#b0449c', '#6b7385', '#d04a3a'];
const $ = (id) => document.getElementById(id);
const format = (n) => (Number.isInteger(n) ? n.toLocaleString('en') : n.toLocaleString('en', { maximumFractionDigits: 1 }));

async function poll() {
  try {
    const response = await fetch('/dashboard/stats', { cache: 'no-store', credentials: 'same-origin' });
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${(await response.json().catch(() => ({}))).error ?? ''}`);
    render(await response.json());
    setStatus('live', 'live');
  } catch (error) {
    setStatus('down', String(error.message ?? error));
  }
  setTimeout(poll, 1000);
}

function setStatus(kind, text) {
  const status = $('status');
  status.className = `status ${kind}`;
  status.textContent = text;
}

function render(stats) {
  const latest = stats.samples[stats.samples.length - 1];
  const { tcp = 0, ...transports } = stats.connections;
  $('connections').textContent = format(tcp);
  $('sessions').textContent = format(stats.sessions);
  $('subscriptions').textContent = format(stats.subscriptions);
  $('published-rate').textContent = format(latest?.published ?? 0);
  $('delivered-rate').textContent = format(latest?.delivered ?? 0);
  $('published-total').textContent = format(stats.publishedTotal);
  $('delivered-total').textContent = format(stats.deliveredTotal);
  $('queued').textContent = format(stats.queued);
  $('slow-closed').textContent = format(stats.slowConsumersClosed);
  $('slow-cut').textContent = format(stats.slowConsumersCut);
  $('slow-dropped').textContent = format(stats.slowConsumerDrops);

  rows($('transports'), Object.entries(transports).map(([name, count]) => [name, format(count)]));
  rows($('channels'), stats.busiestChannels.map(({ channel, messages }) => [channel, format(messages)]), 'no messages in the last minute');
  rows($('slow'), stats.slowConsumers.map(({ id, queued }) => [id, format(queued)]), 'none');
  rows($('limits'), Object.entries(stats.limits).filter(([, count]) => count > 0).map(([name, count]) => [name.replaceAll('_', ' '), format(count)]), 'none');

  const names = Object.keys(transports);
  chart($('connections-chart'), $('connections-legend'), stats.samples, names.map((name) => ({ name, value: (s) => s.connections[name] ?? 0 })));
  chart($('messages-chart'), $('messages-legend'), stats.samples, [
    { name: 'published/s', value: (s) => s.published },
    { name: 'delivered/s', value: (s) => s.delivered },
    { name: 'refused/s', value: (s) => s.refused },
  ]);
}

/** Replaces a table body's rows; `empty` is shown when there are none. */
function rows(body, data, empty) {
  body.replaceChildren(
    ...(data.length === 0 && empty !== undefined ? [[empty, '']] : data).map((cells) => {
      const tr = document.createElement('tr');
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text; // never innerHTML: channel names come from clients
        tr.append(td);
      }
      return tr;
    }),
  );
}

/** One line per series over the samples' time span, with a legend. */
function chart(canvas, legend, samples, series) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const pad = { left: 44, right: 8, top: 8, bottom: 18 };
  const max = Math.max(1, ...samples.flatMap((s) => series.map((line) => line.value(s))));
  const from = samples[0]?.at ?? Date.now();
  const span = Math.max(1000, (samples[samples.length - 1]?.at ?? from) - from);
  const x = (at) => pad.left + ((at - from) / span) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
  g.strokeStyle = getComputedStyle(document.body).getPropertyValue('--line') || '#ccc';
  g.fillStyle = getComputedStyle(document.body).color;
  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  for (const fraction of [0, 0.5, 1]) {
    const v = max * fraction;
    g.beginPath();
    g.moveTo(pad.left, y(v));
    g.lineTo(width - pad.right, y(v));
    g.stroke();
    g.fillText(format(Math.round(v * 10) / 10), 2, y(v) + 4);
  }
  g.fillText(`${Math.round(span / 1000)} s`, width - pad.right - 30, height - 4);
  series.forEach((line, i) => {
    g.strokeStyle = COLORS[i % COLORS.length];
    g.lineWidth = 2;
    g.beginPath();
    samples.forEach((s, j) => (j === 0 ? g.moveTo(x(s.at), y(line.value(s))) : g.lineTo(x(s.at), y(line.value(s)))));
    g.stroke();
  });
  legend.replaceChildren(
    ...series.map((line, i) => {
      const item = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = COLORS[i % COLORS.length];
      item.append(swatch, line.name);
      return item;
    }),
  );
}

poll();

// A user's sessions: the sub goes into the path, encoded.
$('user-sessions').addEventListener('submit', (event) => {
  event.preventDefault();
  location.href = `/dashboard/users/${encodeURIComponent($('user-sub').value)}/sessions`;
});
