/**
 * What the fuzz tests (test/security/fuzz-*.test.ts) send as Bayeux: random messages of every
 * meta channel and of broadcast and service channels, with fields of every wrong type; messages
 * real clients send (recorded from the CometD and Faye clients), mutated; and the odd values
 * (`weird`) every field may take instead. REAL stands for a live session's clientId.
 */
import fc from 'fast-check';
import { REAL } from './fuzz.js';

export const hugeString = fc.constantFrom(2_000, 20_000, 70_000).map((n) => 'x'.repeat(n));
export const anyJson = fc.jsonValue({ maxDepth: 3 });
export const weird: fc.Arbitrary<unknown> = fc.oneof(
  anyJson,
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, '', [], {}, [null], { length: 1 }, '0', 'NaN', '\u2028\u2029'),
  fc.double(),
  { arbitrary: hugeString, weight: 1 },
);

/** Valid broadcast channels, so that subscribes and publishes meet. */
export const POOL = ['/fuzz/a', '/fuzz/b', '/fuzz/a/deep', '/fuzz/A-_!~()$@', '/fuzz/private/x'];
const channelName = fc.oneof(
  { arbitrary: fc.constantFrom(...POOL), weight: 6 },
  fc.constantFrom(
    '/fuzz/*', '/fuzz/**', '/fuzz/private/**', '/*', '/**', '/', '//', '', '/fuzz/ünï©ødé', '/fuzz//a', '/fuzz/a/', 'fuzz', '/fuzz/**/x', '/fuzz/*a',
    '/meta/handshake', '/meta/connect', '/meta/subscribe', '/meta/unsubscribe', '/meta/disconnect', '/meta/unknown', '/meta/*', '/meta/**',
    '/meta/handshake/', '/Meta/Handshake', ' /meta/handshake', '/meta/handshake\u0000', '/meta/../meta/handshake', '/meta',
    '/service/echo', '/service/slow', '/service/none', '/service/*', '/service/**', '/service', '/__proto__', '/constructor/prototype',
  ),
  fc.array(fc.string({ unit: 'binary', maxLength: 8 }), { minLength: 1, maxLength: 4 }).map((parts) => '/' + parts.join('/')),
);
const channelField = fc.oneof({ arbitrary: channelName, weight: 8 }, weird);
/** Up to past the per-message bound (256), so that sessions meet --max-subscriptions too. */
const manyPatterns = fc.tuple(fc.integer({ min: 1, max: 300 }), fc.constantFrom('/fuzz/many/', '/fuzz/private/many/', '/fuzz/*/')).map(([n, prefix]) =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}`),
);
export const messageId = fc.oneof(fc.stringMatching(/^[0-9a-z]{1,20}$/), fc.constantFrom('0', '0000000000000', 'zzzzzzzzzzzzzzzzzzzzzz', 'ZZZ', '-1', ''));
const idField = fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.double(), weird);
const clientIdField = fc.oneof({ arbitrary: fc.constant(REAL), weight: 5 }, fc.string({ maxLength: 30 }), weird);
const ext = fc.record(
  {
    ack: fc.oneof(fc.boolean(), fc.integer({ min: -2, max: 50 }), weird),
    herald: fc.oneof(
      fc.record(
        {
          ids: fc.oneof(fc.boolean(), weird),
          since: fc.oneof(messageId, fc.dictionary(fc.oneof(channelName, fc.constantFrom('__proto__', 'constructor', 'toString')), fc.oneof(messageId, weird), { maxKeys: 6 }), weird),
        },
        { requiredKeys: [] },
      ),
      weird,
    ),
    auth: fc.oneof(fc.constantFrom('letmein', 'nope'), weird),
    timesync: fc.oneof(fc.record({ tc: fc.oneof(fc.integer(), fc.double(), weird), l: fc.integer(), o: fc.integer() }, { requiredKeys: [] }), weird),
  },
  { requiredKeys: [] },
);
const extField = fc.oneof({ arbitrary: ext, weight: 4 }, weird);
const TYPES = ['long-polling', 'callback-polling', 'websocket', 'eventsource', 'cross-origin-long-polling', 'flash', ''];
const adviceField = fc.oneof(
  fc.record({ timeout: fc.oneof(fc.integer({ min: -10, max: 1000 }), weird), interval: weird, reconnect: weird }, { requiredKeys: [] }),
  weird,
);

const bayeuxMessage: fc.Arbitrary<unknown> = fc.oneof(
  fc.record(
    {
      channel: fc.constant('/meta/handshake'),
      version: fc.oneof(fc.constantFrom<unknown>('1.0', '1', '1.0.0', '2.0', '0.9', 1, 1.5), weird),
      minimumVersion: weird,
      supportedConnectionTypes: fc.oneof(fc.constant(['long-polling', 'websocket']), fc.array(fc.constantFrom(...TYPES), { maxLength: 4 }), weird),
      id: idField,
      ext: extField,
    },
    { requiredKeys: ['channel'] },
  ),
  fc.record(
    { channel: fc.constant('/meta/connect'), clientId: clientIdField, connectionType: fc.oneof(fc.constantFrom(...TYPES), weird), id: idField, ext: extField, advice: adviceField },
    { requiredKeys: ['channel'] },
  ),
  fc.record(
    { channel: fc.constantFrom('/meta/subscribe', '/meta/unsubscribe'), clientId: clientIdField, subscription: fc.oneof(channelField, fc.array(channelField, { maxLength: 5 }), manyPatterns), id: idField, ext: extField },
    { requiredKeys: ['channel'] },
  ),
  fc.record({ channel: channelField, clientId: clientIdField, data: weird, id: idField, ext: extField }, { requiredKeys: ['channel'] }),
  fc.record({ channel: fc.constant('/meta/disconnect'), clientId: clientIdField, id: idField, ext: extField }, { requiredKeys: ['channel'] }),
  fc.dictionary(fc.constantFrom('channel', 'clientId', 'id', 'data', 'ext', 'subscription', 'advice', 'version', 'connectionType', 'error', 'successful'), weird, { maxKeys: 6 }),
);

/** What real clients send (recorded from the CometD and Faye clients), to be mutated. */
const RECORDED: Record<string, unknown>[] = [
  { channel: '/meta/handshake', version: '1.0', minimumVersion: '1.0', supportedConnectionTypes: ['websocket', 'long-polling', 'callback-polling'], advice: { timeout: 60000, interval: 0 }, id: '1', ext: { ack: true, herald: { ids: true }, timesync: { tc: 1, l: 0, o: 0 } } },
  { channel: '/meta/connect', clientId: REAL, connectionType: 'long-polling', advice: { timeout: 0 }, id: '2', ext: { ack: -1 } },
  { channel: '/meta/connect', clientId: REAL, connectionType: 'websocket', id: '3', ext: { herald: { since: { '/fuzz/a': '0' } } } },
  { channel: '/meta/subscribe', clientId: REAL, subscription: '/fuzz/a', id: '4', ext: { herald: { since: '0' } } },
  { channel: '/meta/subscribe', clientId: REAL, subscription: ['/fuzz/*', '/fuzz/private/**'], id: '5', ext: { auth: 'letmein' } },
  { channel: '/fuzz/a', clientId: REAL, data: { text: 'hello' }, id: '6' },
  { channel: '/service/echo', clientId: REAL, data: [1, 2, 3], id: '7' },
  { channel: '/meta/unsubscribe', clientId: REAL, subscription: '/fuzz/a', id: '8' },
  { channel: '/meta/disconnect', clientId: REAL, id: '9' },
];
type Mutation = { op: 'drop'; key: string } | { op: 'set'; key: string; value: unknown };
const FIELDS = ['channel', 'clientId', 'id', 'data', 'ext', 'subscription', 'advice', 'version', 'supportedConnectionTypes', 'connectionType'];
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), key: fc.constantFrom(...FIELDS) }),
  fc.record({ op: fc.constant('set' as const), key: fc.constantFrom(...FIELDS), value: weird }),
);
const mutated = fc.tuple(fc.constantFrom(...RECORDED), fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([template, mutations]) => {
  const message: Record<string, unknown> = structuredClone(template);
  for (const m of mutations) {
    if (m.op === 'drop') delete message[m.key];
    else message[m.key] = m.value;
  }
  return message;
});
export const someMessage = fc.oneof(bayeuxMessage, mutated, fc.constantFrom(...RECORDED));

/** A message whose data nests 1,000 or 200,000 arrays deep, for the parsers. */
export const deepNesting = fc.constantFrom(1_000, 200_000).map((n) => `[{"channel":"/fuzz/a","data":${'['.repeat(n)}${']'.repeat(n)}}]`);
