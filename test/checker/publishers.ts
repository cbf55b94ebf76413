/**
 * @module
 * The checker's publishers, one per front door and channel: REST (`POST /pub`), Bayeux (the
 * Herald client, and a hand-written client that retries with the same message id) and the API
 * (`herald.publish` in-process, now and then with data that cannot be encoded). Each publishes
 * its channel's sequence numbers one at a time, at a rate that changes as the run goes, and
 * records how each publish ended: acknowledged (with its id), refused (it did not happen) or
 * unknown (no answer).
 */
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { PublishRecord, PublishStatus } from './model.js';
import type { TokenMint } from './recorder.js';

export type PublishOnce = (channel: string, data: unknown) => Promise<{ status: PublishStatus; id?: string | undefined; note?: string | undefined }>;

export class Publisher {
  readonly records: PublishRecord[] = [];
  #seq = 0;
  #stopped = false;
  #done: Promise<void> = Promise.resolve();
  /** Milliseconds between publishes now; the run changes it, choosing from `delays`. */
  delayMs = 100;

  constructor(
    readonly door: string,
    readonly channel: string,
    private readonly once: PublishOnce,
    /** The delays the run chooses from (a sparse channel has long quiet spells); default: the run's. */
    readonly delays?: readonly number[],
    /** Each publish on a channel of its own beneath `channel` (`<channel>/<seq>`): channels nobody heard yet. */
    readonly fresh = false,
  ) {}

  start(): void {
    this.#done = this.#loop();
  }

  /** Stops after the publish in flight; resolves when it has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }

  /** The newest acknowledged publish. */
  get lastAcked(): PublishRecord | undefined {
    for (let i = this.records.length - 1; i >= 0; i--) if (this.records[i]!.status === 'acked') return this.records[i];
    return undefined;
  }

  async publishOne(): Promise<PublishRecord> {
    const seq = this.#seq++;
    const startedAt = Date.now();
    const channel = this.fresh ? `${this.channel}/${seq}` : this.channel;
    const outcome = await this.once(channel, { s: seq }).catch(() => ({ status: 'unknown' as const, id: undefined, note: undefined }));
    const record: PublishRecord = { door: this.door, channel, seq, status: outcome.status, id: outcome.id, startedAt, note: outcome.note };
    this.records.push(record);
    return record;
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      await this.publishOne();
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    }
  }
}

/** `POST /pub/{channel}` as a backend does (loopback, no key): 200 acked, 503 refused, else (504: Redis's answer lost) unknown. */
export function restPublish(port: number): PublishOnce {
  return (channel, data) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify(data);
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: `/pub${channel}`, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }, agent: false },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            if (res.statusCode === 200) resolve({ status: 'acked', id: JSON.parse(text).id });
            else resolve({ status: res.statusCode === 503 || res.statusCode === 429 ? 'refused' : 'unknown' });
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('no answer')));
      req.on('error', reject);
      req.end(body);
    });
}

/** A Bayeux publish through the Herald client: a reply is acked or refused; a broken connection is unknown. */
export function bayeuxPublisher(port: number, tokens: TokenMint | undefined): { once: PublishOnce; close(): void } {
  const client = new Herald(`http://127.0.0.1:${port}/bayeux`, {
    shareConnection: false,
    WebSocket,
    transports: ['websocket', 'long-polling'],
    backoff: { initialMs: 50, maxMs: 500 },
    maxNetworkDelayMs: 3000,
    upgradeAfterMs: 0,
    ...(tokens === undefined ? {} : { token: () => tokens.fresh() }),
  });
  client.on('error', () => undefined);
  return {
    once: (channel, data) =>
      client.publish(channel, data).then(
        (reply) => ({ status: 'acked', id: reply.messageId }),
        // 504: the server sent it to Redis and the answer was lost; it may be stored.
        (error: { reply?: { error?: unknown } }) => ({ status: error.reply === undefined || String(error.reply.error).startsWith('504') ? 'unknown' : 'refused' }),
      ),
    close: () => client.close(),
  };
}

/**
 * `herald.publish` in-process: resolves acked; an engine outage (documented: nothing stored) refuses.
 * With `bad`, a share of publishes carry data no recipient can encode (a BigInt, a cycle), still
 * holding the sequence number: the API must refuse them (HERALD_ERR_INVALID_DATA) before anything
 * is stored. Acknowledged, they are owed like any other — and can never arrive.
 */
export function apiPublish(publish: (channel: string, data: unknown) => Promise<{ id: string }>, bad?: { share: number; random: () => number }): PublishOnce {
  return (channel, data) => {
    const poisoned = bad !== undefined && bad.random() < bad.share ? unencodable(data, bad.random) : undefined;
    const note = poisoned === undefined ? undefined : `its data unencodable (${'big' in poisoned ? 'a BigInt' : 'a cycle'}): it must have been refused`;
    return publish(channel, poisoned ?? data).then(
      (message) => ({ status: 'acked', id: message.id, note }),
      (error: { code?: string; outcomeUnknown?: boolean }) => ({
        status: (error.code === 'HERALD_ERR_ENGINE_UNAVAILABLE' && error.outcomeUnknown !== true) || (poisoned !== undefined && error.code === 'HERALD_ERR_INVALID_DATA') ? 'refused' : 'unknown',
      }),
    );
  };
}

function unencodable(data: unknown, random: () => number): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  if (random() < 0.5) copy.big = 1n;
  else copy.self = copy;
  return copy;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A Bayeux publisher written by hand, as a careful client retries: one session (with ids asked
 * for), each publish with its own message id; answered `503::engine_unavailable`, or not at all, it
 * sends the same message again — same id, same session — until the server answers. The server's
 * de-duplication of retried publishes is then all that stands between a retry and a loss (the
 * retry acknowledged, never stored) or a duplicate. A session the server ended (402/403) is
 * opened again only if no attempt may have been stored: a new session would not know the id.
 */
export function retryingBayeuxPublisher(port: number, tokens: TokenMint | undefined): PublishOnce {
  let clientId: string | undefined;
  let next = 0;
  const post = (messages: unknown[]) =>
    new Promise<any>((resolve, reject) => {
      const body = JSON.stringify(messages);
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/bayeux', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }, agent: false },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            try {
              resolve(JSON.parse(text));
            } catch {
              reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 100)}`));
            }
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(5_000, () => req.destroy(new Error('no answer')));
      req.on('error', reject);
      req.end(body);
    });
  const handshake = async () => {
    const ext = { herald: { ids: true }, ...(tokens === undefined ? {} : { auth: { token: await tokens.fresh() } }) };
    const [reply] = await post([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: String(++next), ext }]);
    clientId = reply?.successful === true ? reply.clientId : undefined;
  };
  return async (channel, data) => {
    const id = String(++next);
    const deadline = Date.now() + 8_000;
    let mayBeStored = false;
    const tries: string[] = [];
    const note = () => (tries.length === 0 ? undefined : `the same message id sent again after ${tries.join(', ')}`);
    while (Date.now() < deadline) {
      try {
        if (clientId === undefined) {
          if (mayBeStored) break;
          await handshake();
          if (clientId === undefined) {
            await pause(150);
            continue;
          }
        }
        const replies = await post([{ channel, data, clientId, id }]);
        const reply = Array.isArray(replies) ? replies.find((m: any) => m?.id === id) : undefined;
        if (reply?.successful === true) return { status: 'acked', id: reply.ext?.herald?.id, note: note() };
        if (reply === undefined) throw new Error('no reply to the publish');
        const error = String(reply?.error ?? '');
        tries.push(error.split(':')[0]!);
        // Sent to Redis, answer lost: it may be stored, and the same id sent again would not be known.
        if (error.startsWith('504')) return { status: 'unknown', note: note() };
        if (error.startsWith('402') || error.startsWith('403')) clientId = undefined;
        else if (!error.startsWith('503')) return { status: mayBeStored ? 'unknown' : 'refused', note: note() };
      } catch {
        tries.push('no answer');
        mayBeStored = true;
      }
      await pause(150);
    }
    return { status: mayBeStored ? 'unknown' : 'refused', note: note() };
  };
}
