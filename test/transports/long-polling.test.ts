import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { httpRequest, postJson } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const HANDSHAKE = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] };

describe('long-polling encodings', () => {
  test('accepts form-encoded and text/plain `message=` bodies (Faye cross-origin) and GET ?message=', async (t) => {
    const { port } = await startHerald(t);
    const encoded = 'message=' + encodeURIComponent(JSON.stringify([HANDSHAKE]));
    for (const type of ['application/x-www-form-urlencoded', 'text/plain;charset=UTF-8']) {
      const res = await httpRequest(port, { method: 'POST', path: '/bayeux', headers: { 'Content-Type': type }, body: encoded });
      assert.equal(res.status, 200, type);
      assert.equal(res.json()[0].successful, true, type);
    }
    const get = await httpRequest(port, { path: '/bayeux?' + encoded });
    assert.equal(get.json()[0].successful, true);
    // Several message parameters, mixing single messages and arrays.
    const client = new RawBayeux(port);
    await client.handshake();
    const { clientId } = client;
    const multi = ['message=' + encodeURIComponent(JSON.stringify({ channel: '/a', clientId, data: 1 })), 'message=' + encodeURIComponent(JSON.stringify([{ channel: '/b', clientId, data: 2 }]))].join('&');
    const res = await httpRequest(port, { method: 'POST', path: '/bayeux', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: multi });
    assert.deepEqual(res.json(), [{ channel: '/a', successful: true }, { channel: '/b', successful: true }]);
  });

  test('routes the Bayeux paths and every sub-path the CometD client uses', async (t) => {
    const { port } = await startHerald(t);
    for (const path of ['/bayeux', '/bayeux/', '/bayeux/handshake', '/cometd', '/cometd/handshake', '/cometd/connect/extra?x=1']) {
      const res = await postJson(port, path, [HANDSHAKE]);
      assert.equal(res.status, 200, path);
      assert.equal(res.json()[0].successful, true, path);
    }
    for (const path of ['/', '/bayeuxx', '/other/bayeux']) {
      assert.equal((await postJson(port, path, [HANDSHAKE])).status, 404, path);
    }
  });

  test('serves custom paths', async (t) => {
    const { port } = await startHerald(t, { paths: ['/push'] });
    assert.equal((await postJson(port, '/push/handshake', [HANDSHAKE])).status, 200);
    assert.equal((await postJson(port, '/bayeux', [HANDSHAKE])).status, 404);
  });

  test('replies leave with the headers a long-poll needs', async (t) => {
    const { port } = await startHerald(t);
    const res = await postJson(port, '/bayeux', [HANDSHAKE]);
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-cache, no-store, must-revalidate');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-accel-buffering'], 'no');
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.text));
  });
});

describe('long-polling bad input', () => {
  test('each malformed request gets a 4xx naming the problem', async (t) => {
    const { port } = await startHerald(t);
    const json = (body: string) => httpRequest(port, { method: 'POST', path: '/bayeux', headers: { 'Content-Type': 'application/json' }, body });
    const cases: [Promise<any>, number, RegExp][] = [
      [json('[{"channel":'), 400, /malformed JSON/],
      [json('42'), 400, /JSON object or an array/],
      [json('"text"'), 400, /JSON object or an array/],
      [json('null'), 400, /JSON object or an array/],
      [json('[]'), 400, /empty message batch/],
      [json('[1, {"channel":"/a"}]'), 400, /every message in a batch must be a JSON object/],
      [json('[[{"channel":"/a"}]]'), 400, /every message in a batch must be a JSON object/],
      [httpRequest(port, { method: 'POST', path: '/bayeux', headers: { 'Content-Type': 'text/plain' }, body: 'hello' }), 400, /no messages/],
      [httpRequest(port, { path: '/bayeux' }), 400, /no messages/],
      [httpRequest(port, { path: '/bayeux?message=%7Bbroken' }), 400, /malformed JSON/],
      [httpRequest(port, { method: 'PUT', path: '/bayeux', body: '[]' }), 405, /method PUT not allowed/],
      [httpRequest(port, { method: 'DELETE', path: '/bayeux' }), 405, /method DELETE not allowed/],
    ];
    for (const [pending, status, message] of cases) {
      const res = await pending;
      assert.equal(res.status, status, res.text);
      assert.match(res.json().error, message);
    }
  });

  test('a message without a channel, or with a non-string one, gets a Bayeux error reply', async (t) => {
    const { port } = await startHerald(t);
    const res = await postJson(port, '/bayeux', [{ data: 1, id: '1' }, { channel: 42, id: '2' }, { channel: ['/a'] }, { channel: '/ok', data: 1, id: { bad: true } }]);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), [
      { channel: '/meta/unknown', id: '1', successful: false, error: '402:channel:Missing required parameter' },
      { channel: '/meta/unknown', id: '2', successful: false, error: '400::channel must be a string' },
      { channel: '/meta/unknown', successful: false, error: '400::channel must be a string' },
      { channel: '/ok', successful: false, error: '400:id:Invalid message id' },
    ]);
  });

  test('refuses an over-large body with 413, by declared length and while streaming', async (t) => {
    const { port } = await startHerald(t, { maxBodyBytes: 1024 });
    const big = JSON.stringify([{ channel: '/a', data: 'x'.repeat(2000) }]);
    const declared = await postJson(port, '/bayeux', big);
    assert.equal(declared.status, 413);
    assert.match(declared.json().error, /exceeds 1024 bytes/);
    const chunked = await httpRequest(port, { method: 'POST', path: '/bayeux', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, body: big });
    assert.equal(chunked.status, 413);
    assert.equal((await postJson(port, '/bayeux', [HANDSHAKE])).status, 200, 'the server is fine');
  });

  test('the default cap is 1 MiB', async (t) => {
    const { port } = await startHerald(t);
    const justUnder = JSON.stringify({ channel: '/a', data: 'x'.repeat(1024 * 1024 - 100) });
    assert.equal((await postJson(port, '/bayeux', justUnder)).status, 200);
    assert.equal((await postJson(port, '/bayeux', JSON.stringify({ channel: '/a', data: 'x'.repeat(1024 * 1024) }))).status, 413);
  });

  test('bad requests do not disturb another client\'s held connect', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/calm');
    const held = client.connect();
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    await postJson(port, '/bayeux', '[{"broken');
    await postJson(port, '/bayeux', [{ channel: '/meta/connect', clientId: client.clientId.slice(1), connectionType: 'long-polling' }]);
    await postJson(port, '/bayeux', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }, { channel: '/calm', data: 'smuggled' }]);
    await herald.publish('/calm', 'real');
    assert.deepEqual((await held).json().slice(1), [{ channel: '/calm', data: 'real' }]);
  });

  test('a held connect whose client goes away is released at once', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    const body = JSON.stringify([client.connectMessage()]);
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(`POST /bayeux HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    socket.destroy();
    await waitFor('the hold to be released', () => herald.stats().heldConnects === 0);
    assert.equal(herald.sessionCount, 1, 'the session lives on until maxInterval');
  });
});

describe('publishing without a session', () => {
  test('is refused unless it is a JSON POST, which no page can send cross-site without asking', async (t) => {
    const { port } = await startHerald(t);
    const message = encodeURIComponent(JSON.stringify([{ channel: '/csrf', data: 'forged' }]));
    const viaGet = await httpRequest(port, { path: `/bayeux?message=${message}` });
    assert.equal(viaGet.json()[0].error, '402:clientId:Missing required parameter');
    const viaForm = await httpRequest(port, { method: 'POST', path: '/bayeux', headers: { 'Content-Type': 'text/plain' }, body: `message=${message}` });
    assert.equal(viaForm.json()[0].error, '402:clientId:Missing required parameter');
    assert.equal((await postJson(port, '/bayeux', [{ channel: '/csrf', data: 'fine' }])).json()[0].successful, true);
  });
});

describe('CORS and origins', () => {
  test('answers preflight for an allowed origin, echoing it with credentials, never *', async (t) => {
    const { port } = await startHerald(t, { allowedOrigins: ['https://app.example.com'] });
    const res = await httpRequest(port, {
      method: 'OPTIONS',
      path: '/bayeux',
      headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    assert.match(String(res.headers['access-control-allow-methods']), /POST/);
    assert.match(String(res.headers['access-control-allow-headers']), /Content-Type/);
    const post = await postJson(port, '/bayeux', [HANDSHAKE], { Origin: 'https://app.example.com' });
    assert.equal(post.status, 200);
    assert.equal(post.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(post.headers['access-control-allow-credentials'], 'true');
    assert.equal(post.headers.vary, 'Origin');
  });

  test('refuses other origins outright, preflight or not', async (t) => {
    const { port, herald } = await startHerald(t, { allowedOrigins: ['https://app.example.com'] });
    const pre = await httpRequest(port, { method: 'OPTIONS', path: '/bayeux', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 403);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    const post = await postJson(port, '/bayeux', [HANDSHAKE], { Origin: 'https://evil.example' });
    assert.equal(post.status, 403);
    assert.match(post.json().error, /origin "https:\/\/evil.example" is not allowed/);
    assert.equal(herald.sessionCount, 0, 'nothing was processed');
  });

  test('by default allows the same origin and localhost on any port, and requests without Origin', async (t) => {
    const { port } = await startHerald(t);
    for (const origin of [`http://127.0.0.1:${port}`, 'http://localhost:3000', 'https://localhost', 'http://[::1]:8080']) {
      assert.equal((await postJson(port, '/bayeux', [HANDSHAKE], { Origin: origin })).status, 200, origin);
    }
    for (const origin of ['https://example.com', 'null', 'http://localhost.evil.com']) {
      assert.equal((await postJson(port, '/bayeux', [HANDSHAKE], { Origin: origin })).status, 403, origin);
    }
    assert.equal((await postJson(port, '/bayeux', [HANDSHAKE])).status, 200);
  });

  test('* reflects any origin, still with credentials and never a literal *', async (t) => {
    const { port } = await startHerald(t, { allowedOrigins: ['*'] });
    const res = await postJson(port, '/bayeux', [HANDSHAKE], { Origin: 'https://anywhere.example' });
    assert.equal(res.headers['access-control-allow-origin'], 'https://anywhere.example');
  });
});

describe('/health', () => {
  test('reports liveness and counts as JSON', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe(['/a', '/b/**']);
    const res = await httpRequest(port, { path: '/health' });
    assert.equal(res.status, 200);
    const { limits, connections, memory, ...counts } = res.json();
    assert.deepEqual(counts, { status: 'ok', engine: { healthy: true }, sessions: 1, heldConnects: 0, patterns: 2, webSockets: 0 });
    assert.ok(connections >= 1, 'this request at least');
    assert.equal(limits.message_size, 0);
    assert.ok(memory.budgetBytes > 0 && memory.historyBytes === 0 && memory.queueBytes === 0, JSON.stringify(memory));
  });
});
