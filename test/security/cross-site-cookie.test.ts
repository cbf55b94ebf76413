/**
 * The `herald_token` cookie is ambient: a browser attaches it to whatever another site points at
 * Herald — a `<script src>` (JSONP), an `<iframe>`, an `<img>` — and those read the answer without
 * asking CORS. So on every door the cookie alone counts only when the request shows it comes from
 * Herald's own pages (`Sec-Fetch-Site: same-origin`) or names an allowed Origin; otherwise the
 * request is refused, naming why. The same token in `?token=` (which no other site knows) works.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { withTimeout } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const HANDSHAKE = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling', 'callback-polling', 'websocket'], id: '1' };

/** What a door did with one request: served it, or refused it and said why. */
type Outcome = { served: true } | { served: false; why: string };

interface Door {
  readonly name: string;
  /** `query`: extra query parameters (`token=…`); `headers`: cookie, Origin, Sec-Fetch-Site. */
  knock(port: number, query: string, headers: Record<string, string>, t: { after(fn: () => unknown): void }): Promise<Outcome>;
}

/** A REST stream door: served when the stream opens with 200, else the refusal's error. */
async function stream(port: number, path: string, headers: Record<string, string>, t: { after(fn: () => unknown): void }): Promise<Outcome> {
  const { res, text } = await openStream(port, path, headers, t);
  if (res.statusCode === 200) return { served: true };
  await once(res, 'end');
  return { served: false, why: `${res.statusCode} ${JSON.parse(text()).error}` };
}

/** A Bayeux handshake over GET (JSONP or not): served when it succeeds, else its error. */
async function bayeuxGet(port: number, query: string, headers: Record<string, string>, jsonp: boolean): Promise<Outcome> {
  const res = await httpRequest(port, { path: `/bayeux?${jsonp ? 'jsonp=cb&' : ''}message=${encodeURIComponent(JSON.stringify([HANDSHAKE]))}${query}`, headers });
  assert.equal(res.status, 200, res.text);
  const body = jsonp ? JSON.parse(/^\/\*\*\/cb\((.*)\);$/s.exec(res.text)![1]!) : res.json();
  return body[0].successful === true ? { served: true } : { served: false, why: body[0].error };
}

const DOORS: Door[] = [
  {
    name: 'REST GET long-poll',
    async knock(port, query, headers) {
      const res = await httpRequest(port, { path: `/sub/private/alice?wait=0&since=0${query}`, headers });
      return res.status === 200 ? { served: true } : { served: false, why: `${res.status} ${res.json().error}` };
    },
  },
  {
    name: 'REST JSONP',
    async knock(port, query, headers) {
      const res = await httpRequest(port, { path: `/sub/private/alice?callback=steal&wait=0&since=0${query}`, headers });
      if (res.status === 200) return { served: true };
      assert.ok(!res.text.includes('steal('), 'nothing is handed to the callback');
      return { served: false, why: `${res.status} ${res.json().error}` };
    },
  },
  { name: 'REST SSE', knock: (port, query, headers, t) => stream(port, `/sub/private/alice?x=1${query}`, { ...headers, Accept: 'text/event-stream' }, t) },
  { name: 'REST NDJSON stream', knock: (port, query, headers, t) => stream(port, `/sub/private/alice?transport=stream${query}`, headers, t) },
  { name: 'REST iframe', knock: (port, query, headers, t) => stream(port, `/sub/private/alice?transport=iframe${query}`, headers, t) },
  {
    name: 'REST WebSocket upgrade',
    async knock(port, query, headers, t) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/sub/private/alice?x=1${query}`, { headers });
      ws.on('error', () => {});
      t.after(() => ws.terminate());
      const refused = once(ws, 'unexpected-response').then(async ([, res]) => {
        const response = res as IncomingMessage;
        let body = '';
        for await (const chunk of response) body += chunk;
        return { served: false as const, why: `${response.statusCode} ${JSON.parse(body).error}` };
      });
      return withTimeout('the upgrade to be answered', Promise.race([once(ws, 'open').then(() => ({ served: true as const })), refused]));
    },
  },
  { name: 'Bayeux callback-polling handshake', knock: (port, query, headers) => bayeuxGet(port, query, headers, true) },
  { name: 'Bayeux GET long-polling handshake', knock: (port, query, headers) => bayeuxGet(port, query, headers, false) },
  {
    name: 'Bayeux WebSocket handshake',
    async knock(port, query, headers, t) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/bayeux?x=1${query}`, { headers });
      t.after(() => ws.terminate());
      await withTimeout('the socket to open', once(ws, 'open'));
      ws.send(JSON.stringify([HANDSHAKE]));
      const [data] = await withTimeout('the handshake reply', once(ws, 'message'));
      const [reply] = JSON.parse(String(data));
      return reply.successful === true ? { served: true } : { served: false, why: reply.error };
    },
  },
];

describe('a herald_token cookie on a request another site could make', () => {
  test('is refused on every door, naming why; ?token=, Sec-Fetch-Site: same-origin or an allowed Origin are served', async (t) => {
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET, allowedOrigins: ['https://app.example'] });
    await herald.publish('/private/alice', { secret: 'for alice only' });
    const token = await new SignJWT({ subscribe: ['/private/alice'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h').sign(Buffer.from(SECRET));
    const cookie = `theme=dark; herald_token=${token}`;
    const refused: [string, string, Record<string, string>][] = [
      ['the cookie alone (a <script src> or <iframe> elsewhere)', '', { Cookie: cookie }],
      ['the cookie, sent cross-site', '', { Cookie: cookie, 'Sec-Fetch-Site': 'cross-site' }],
      ['the cookie, from a sibling site', '', { Cookie: cookie, 'Sec-Fetch-Site': 'same-site' }],
    ];
    const served: [string, string, Record<string, string>][] = [
      ['?token=', `&token=${token}`, {}],
      ['the cookie with Sec-Fetch-Site: same-origin', '', { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' }],
      ['the cookie from an allowed Origin', '', { Cookie: cookie, Origin: 'https://app.example' }],
      ['the cookie and ?token=', `&token=${token}`, { Cookie: cookie }],
    ];
    for (const door of DOORS) {
      for (const [what, query, headers] of refused) {
        const outcome = await door.knock(port, query, headers, t);
        assert.equal(outcome.served, false, `${door.name}: ${what} must be refused`);
        if (!outcome.served) assert.match(outcome.why, /^403 .*herald_token cookie.*Sec-Fetch-Site: same-origin|^403:cookie_token_cross_site:handshake_denied$/, `${door.name}: ${what}`);
      }
      for (const [what, query, headers] of served) {
        const outcome = await door.knock(port, query, headers, t);
        assert.deepEqual(outcome, { served: true }, `${door.name}: ${what} must be served`);
      }
    }
  });

  test('a Bayeux session a cookie opened on a same-origin page acts with its token; one refused gets no clientId', async (t) => {
    const { port } = await startHerald(t, { jwtSecret: SECRET });
    const token = await new SignJWT({ subscribe: ['/private/alice'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h').sign(Buffer.from(SECRET));
    const jsonp = (messages: unknown[], headers: Record<string, string>) =>
      httpRequest(port, { path: `/bayeux?jsonp=cb&message=${encodeURIComponent(JSON.stringify(messages))}`, headers }).then((res) => JSON.parse(/^\/\*\*\/cb\((.*)\);$/s.exec(res.text)![1]!));
    const stolen = await jsonp([HANDSHAKE], { Cookie: `herald_token=${token}` });
    assert.equal(stolen[0].successful, false);
    assert.equal(stolen[0].clientId, undefined, 'no clientId to use from anywhere');
    assert.deepEqual(stolen[0].advice, { reconnect: 'none' });
    const own = await jsonp([HANDSHAKE], { Cookie: `herald_token=${token}`, 'Sec-Fetch-Site': 'same-origin' });
    assert.equal(own[0].successful, true);
    const subscribed = await jsonp([{ channel: '/meta/subscribe', clientId: own[0].clientId, subscription: '/private/alice', id: '2' }], { 'Sec-Fetch-Site': 'same-origin' });
    assert.equal(subscribed[0].successful, true, JSON.stringify(subscribed));
  });
});
