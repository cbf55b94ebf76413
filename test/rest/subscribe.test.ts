import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
import type { HeraldOptions } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

/** Herald on a server of the test's own, which can cut the TCP connection of any /sub response. */
async function startCuttable(t: { after(fn: () => unknown): void }, options: HeraldOptions = {}) {
  const server = createServer();
  const herald = createHerald(options);
  herald.attach(server);
  const subSockets = new Set<Socket>();
  server.prependListener('request', (req: IncomingMessage) => {
    if (req.url?.startsWith('/sub/')) subSockets.add(req.socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(t, async () => {
    await herald.close();
    server.close();
  });
  return {
    herald,
    port: (server.address() as AddressInfo).port,
    cutStreams: () => {
      for (const socket of subSockets) socket.destroy();
      subSockets.clear();
    },
  };
}

function sseEvents(text: string): { id?: string; event?: string; data: any }[] {
  return text
    .split('\n\n')
    .map((block) => {
      const lines = block.split('\n').filter((l) => !l.startsWith(':') && l.length > 0);
      const field = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
      const data = field('data');
      return data === undefined ? undefined : { id: field('id'), event: field('event'), data: JSON.parse(data) };
    })
    .filter((e): e is NonNullable<typeof e> => e !== undefined);
}

const publish = (port: number, channel: string, data: unknown) =>
  httpRequest(port, { method: 'POST', path: `/pub${channel}`, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(data) }).then((r) => r.json());

describe('GET /sub/{channel} as server-sent events', () => {
  test('streams messages with ids, from REST and Bayeux publishers alike', async (t) => {
    const { port } = await startHerald(t);
    const sub = await openStream(port, '/sub/news', { Accept: 'text/event-stream' }, t);
    assert.equal(sub.res.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(sub.res.headers['x-accel-buffering'], 'no');
    await waitFor('the preamble', () => /retry: \d+/.test(sub.text()));
    const first = await publish(port, '/news', { n: 1 });
    const bayeux = new RawBayeux(port);
    await bayeux.open();
    await bayeux.publish('/news', { n: 2 });
    await waitFor('two events', () => sseEvents(sub.text()).length === 2);
    const events = sseEvents(sub.text());
    assert.equal(events[0]!.id, first.id);
    assert.deepEqual(events.map((e) => e.data.data), [{ n: 1 }, { n: 2 }]);
    assert.ok(events.every((e) => e.data.channel === '/news' && e.data.id === e.id));
  });

  test('resumes after the server drops the stream: nothing lost, nothing duplicated', async (t) => {
    const { port, cutStreams, herald } = await startCuttable(t);
    const first = await openStream(port, '/sub/feed', { Accept: 'text/event-stream' }, t);
    for (let i = 0; i < 3; i++) await publish(port, '/feed', i);
    await waitFor('three events', () => sseEvents(first.text()).length === 3);
    cutStreams();
    if (!first.res.destroyed) await new Promise((resolve) => first.res.once('close', resolve));
    await waitFor('the subscription to be gone', () => herald.stats().patterns === 0);
    for (let i = 3; i < 6; i++) await publish(port, '/feed', i);
    const lastSeen = sseEvents(first.text()).at(-1)!.id!;
    const second = await openStream(port, '/sub/feed', { Accept: 'text/event-stream', 'Last-Event-ID': lastSeen }, t);
    await waitFor('the missed events', () => sseEvents(second.text()).length === 3);
    await publish(port, '/feed', 6);
    await waitFor('the live event', () => sseEvents(second.text()).length === 4);
    const all = [...sseEvents(first.text()), ...sseEvents(second.text())].map((e) => e.data.data);
    assert.deepEqual(all, [0, 1, 2, 3, 4, 5, 6]);
  });

  test('resumes from ?lastEventId= too, and signals a gap when history no longer reaches back', async (t) => {
    const { port } = await startHerald(t, { historySize: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await publish(port, '/g', i)).id);
    const sub = await openStream(port, `/sub/g?lastEventId=${ids[0]}`, { Accept: 'text/event-stream' }, t);
    await waitFor('the gap and the kept events', () => sseEvents(sub.text()).length === 3);
    const [gap, ...rest] = sseEvents(sub.text());
    assert.equal(gap!.event, 'gap');
    assert.deepEqual(gap!.data, { channel: '/g', lastEventId: ids[0] });
    assert.deepEqual(rest.map((e) => e.data.data), [3, 4]);
  });

  test('a pattern receives every matching channel; asked to resume, it signals a gap', async (t) => {
    const { port } = await startHerald(t);
    const sub = await openStream(port, '/sub/stocks/**', { Accept: 'text/event-stream', 'Last-Event-ID': '0000000000000' }, t);
    await publish(port, '/stocks/acme', 1);
    await publish(port, '/stocks/nyse/acme', 2);
    await publish(port, '/bonds/x', 3);
    await waitFor('events', () => sseEvents(sub.text()).length === 3);
    const [gap, ...events] = sseEvents(sub.text());
    assert.equal(gap!.event, 'gap');
    assert.deepEqual(events.map((e) => e.data.channel), ['/stocks/acme', '/stocks/nyse/acme']);
  });

  test('frees its session when the client goes away', async (t) => {
    const { port, herald } = await startHerald(t);
    const sub = await openStream(port, '/sub/bye', { Accept: 'text/event-stream' }, t);
    await waitFor('the subscription', () => herald.stats().patterns === 1);
    sub.res.destroy();
    await waitFor('the session to be gone', () => herald.sessionCount === 0 && herald.stats().patterns === 0);
  });

  test('cuts a stream whose client stops reading, instead of buffering for it', async (t) => {
    const { port, herald } = await startHerald(t, { maxBufferedBytes: 64 * 1024, publishKey: 'k'.repeat(16) });
    const sub = await openStream(port, '/sub/flood', { Accept: 'text/event-stream' }, t);
    sub.res.pause();
    sub.req.socket?.pause();
    const big = JSON.stringify('x'.repeat(16 * 1024));
    for (let i = 0; i < 400 && herald.sessionCount > 0; i++) {
      await httpRequest(port, { method: 'POST', path: '/pub/flood', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${'k'.repeat(16)}` }, body: big });
    }
    await waitFor('the stream to be cut and its session freed', () => herald.sessionCount === 0);
    // Counted once, where operators look (as a WebSocket cut for the same reason is).
    const health = (await httpRequest(port, { path: '/health' })).json();
    assert.equal(health.limits.send_buffer, 1);
  });

  test('sends heartbeat comments', async (t) => {
    const { port } = await startHerald(t, { heartbeatMs: 30 });
    const sub = await openStream(port, '/sub/quiet', { Accept: 'text/event-stream' }, t);
    await waitFor('two heartbeats', () => (sub.text().match(/^:\n\n/gm) ?? []).length >= 2);
  });
});

describe('GET /sub/{channel}?transport=stream (NDJSON)', () => {
  test('streams one JSON message per line and resumes from ?since=', async (t) => {
    const { port } = await startHerald(t);
    const first = await publish(port, '/lines', 'a');
    await publish(port, '/lines', 'b');
    const sub = await openStream(port, `/sub/lines?transport=stream&since=${first.id}`, {}, t);
    assert.equal(sub.res.headers['content-type'], 'application/x-ndjson; charset=utf-8');
    await publish(port, '/lines', 'c');
    const lines = () => sub.text().split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
    await waitFor('two lines', () => lines().length === 2);
    assert.deepEqual(lines().map((m) => m.data), ['b', 'c']);
  });
});

describe('GET /sub bad requests', () => {
  test('are refused with a reason', async (t) => {
    const { port } = await startHerald(t);
    const cases: [Promise<any>, number, RegExp][] = [
      [httpRequest(port, { path: '/sub/a?transport=carrier-pigeon' }), 400, /unknown transport/],
      [httpRequest(port, { path: '/sub/a?transport=toString' }), 400, /unknown transport/],
      [httpRequest(port, { path: '/sub/a?wait=5' }), 400, /wait must be 0/],
      [httpRequest(port, { path: '/sub/a?callback=alert(1)' }), 400, /invalid callback name/],
      [httpRequest(port, { method: 'POST', path: '/sub/a', body: 'x' }), 405, /use GET/],
      [httpRequest(port, { path: '/sub/meta/connect', headers: { Accept: 'text/event-stream' } }), 403, /meta channels/],
      [httpRequest(port, { path: '/sub/a%20b', headers: { Accept: 'text/event-stream' } }), 400, /invalid channel/],
      [httpRequest(port, { path: '/sub/a', headers: { Accept: 'text/event-stream', 'Last-Event-ID': 'not-an-id' } }), 400, /message id/],
    ];
    for (const [pending, status, error] of cases) {
      const res = await pending;
      assert.equal(res.status, status, res.text);
      assert.match(res.json().error, error);
    }
  });
});

describe('GET /sub/{channel} as a long-poll', () => {
  test('answers at once with what came after ?since=, else holds until the next message', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 10_000 });
    const a = await publish(port, '/poll', 'a');
    await publish(port, '/poll', 'b');
    const backlog = await httpRequest(port, { path: `/sub/poll?since=${a.id}` });
    assert.equal(backlog.status, 200);
    assert.deepEqual(backlog.json().map((m: any) => m.data), ['b']);
    const last = backlog.json()[0].id;
    const held = httpRequest(port, { path: `/sub/poll?since=${last}` });
    await waitFor('the poll to be held', () => herald.stats().heldConnects === 1);
    await publish(port, '/poll', 'c');
    const res = await held;
    assert.deepEqual(res.json().map((m: any) => m.data), ['c']);
    await waitFor('its session to be gone', () => herald.sessionCount === 0);
  });

  test('answers an empty array at the timeout, and at once with ?wait=0', async (t) => {
    const { port } = await startHerald(t, { timeoutMs: 200 });
    const timedOut = await httpRequest(port, { path: '/sub/idle' });
    assert.deepEqual(timedOut.json(), []);
    assert.ok(timedOut.elapsedMs >= 150);
    const short = await httpRequest(port, { path: '/sub/idle?wait=0' });
    assert.deepEqual(short.json(), []);
    assert.ok(short.elapsedMs < 150);
  });

  test('puts the gap signal first when history no longer reaches back', async (t) => {
    const { port } = await startHerald(t, { historySize: 1 });
    const first = await publish(port, '/gp', 1);
    await publish(port, '/gp', 2);
    await publish(port, '/gp', 3);
    const res = (await httpRequest(port, { path: `/sub/gp?since=${first.id}` })).json();
    assert.deepEqual(res[0], { gap: true, channel: '/gp', since: first.id });
    assert.deepEqual(res.slice(1).map((m: any) => m.data), [3]);
  });

  test('refuses an unsafe callback with 400, never reflecting it', async (t) => {
    const { port } = await startHerald(t);
    for (const name of ['alert(document.cookie)//', '<img src=x>', 'a'.repeat(65)]) {
      const res = await httpRequest(port, { path: `/sub/js?wait=0&callback=${encodeURIComponent(name)}` });
      assert.equal(res.status, 400);
      assert.ok(!res.text.includes(name), `${name} is not reflected`);
    }
  });

  test('wraps the answer as JSONP with ?callback=, the cursor as its second argument', async (t) => {
    const { port } = await startHerald(t);
    const a = await publish(port, '/js', 'x');
    const b = await publish(port, '/js', 'y');
    const res = await httpRequest(port, { path: `/sub/js?since=${a.id}&callback=got` });
    assert.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.match(res.text, /^\/\*\*\/got\(\[\{"id":"[0-9a-z]+","channel":"\/js","data":"y"\}\],"[0-9a-z]+"\);$/);
    assert.ok(res.text.endsWith(`,"${b.id}");`), 'the cursor is the last id sent');
  });
});

describe('GET /sub/{channel}?transport=multipart and ?transport=iframe', () => {
  test('multipart: a part per message; a payload cannot forge the boundary', async (t) => {
    const { port } = await startHerald(t);
    const sub = await openStream(port, '/sub/parts?transport=multipart', {}, t);
    const boundary = /boundary=(\S+)/.exec(String(sub.res.headers['content-type']))![1]!;
    assert.match(String(sub.res.headers['content-type']), /^multipart\/mixed; boundary=herald-/);
    await publish(port, '/parts', { n: 1 });
    await publish(port, '/parts', { forged: `\r\n--${boundary}\r\nContent-Type: application/json\r\n\r\n{"evil":true}\r\n` });
    const parts = () =>
      sub
        .text()
        .split(`--${boundary}\r\n`)
        .filter((p) => p.startsWith('Content-Type: application/json')) // heartbeats are empty text parts
        .map((p) => JSON.parse(p.slice(p.indexOf('\r\n\r\n') + 4).trimEnd()));
    const complete = () => {
      try {
        return parts().length === 2;
      } catch {
        return false; // a part still arriving
      }
    };
    await waitFor('two whole parts', complete);
    assert.deepEqual(parts()[0].data, { n: 1 });
    assert.match(parts()[1].data.forged, /--herald-/, 'the text arrives intact, inside its part');
  });

  test('iframe: a script per message calling the parent, safe against </script> in payloads', async (t) => {
    const { port } = await startHerald(t);
    const sub = await openStream(port, '/sub/frames?transport=iframe&callback=onHerald', {}, t);
    assert.equal(sub.res.headers['content-type'], 'text/html; charset=utf-8');
    await publish(port, '/frames', { html: '</script><script>alert(1)</script>' });
    await waitFor('the script block', () => sub.text().includes('<script>h('));
    const scripts = [...sub.text().matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    const got: unknown[] = [];
    const { runInNewContext } = await import('node:vm');
    runInNewContext(scripts.join(';\n'), { parent: { onHerald: (m: unknown) => got.push(JSON.parse(JSON.stringify(m))) } });
    assert.equal(scripts.length, 2, 'the setup script and one message, nothing injected');
    assert.deepEqual((got[0] as any).data, { html: '</script><script>alert(1)</script>' });
    assert.ok(sub.text().length > 2048, 'padded for old browsers');
  });
});

describe('GET /sub/{channel} over WebSocket', () => {
  test('one JSON message per frame, resumable from ?since=', async (t) => {
    const { default: WebSocket } = await import('ws');
    const { port, herald } = await startHerald(t);
    const first = await publish(port, '/wsc', 'a');
    await publish(port, '/wsc', 'b');
    const ws = new WebSocket(`ws://127.0.0.1:${port}/sub/wsc?since=${first.id}`);
    onCleanup(t, () => ws.terminate());
    const frames: any[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await once(ws, 'open');
    await waitFor('the replay', () => frames.length === 1);
    await waitFor('the live subscription', () => herald.stats().patterns === 1);
    await publish(port, '/wsc', 'c');
    await waitFor('the live message', () => frames.length === 2);
    assert.deepEqual(frames.map((f) => f.data), ['b', 'c']);
    assert.ok(frames.every((f) => f.channel === '/wsc' && typeof f.id === 'string'));
    ws.close();
    await waitFor('the session to be gone', () => herald.sessionCount === 0);
  });

  test('closes a socket whose client stops reading, as a slow consumer', async (t) => {
    const { default: WebSocket } = await import('ws');
    const { port, herald } = await startHerald(t, { maxBufferedBytes: 64 * 1024 });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/sub/flood`);
    onCleanup(t, () => ws.terminate()); // a paused client never sees the close
    await once(ws, 'open');
    await waitFor('the live subscription', () => herald.stats().patterns === 1);
    ws.pause(); // stop reading: the server's send buffer fills
    const payload = 'x'.repeat(16 * 1024);
    for (let i = 0; i < 2000 && herald.stats().webSockets > 0; i++) {
      await herald.publish('/flood', payload);
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor('the slow socket to be closed and its session freed', () => herald.stats().webSockets === 0 && herald.sessionCount === 0);
  });

  test('refuses a bad channel before upgrading', async (t) => {
    const { default: WebSocket } = await import('ws');
    const { port } = await startHerald(t);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/sub/meta/x`);
    ws.on('error', () => {});
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
    assert.equal(res.statusCode, 403);
  });
});
