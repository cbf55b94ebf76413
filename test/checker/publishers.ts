/**
 * @module
 * The checker's publishers, one per front door and channel: REST (`POST /pub`), Bayeux (the
 * Herald client) and the API (`herald.publish` in-process). Each publishes its channel's sequence
 * numbers one at a time, at a rate that changes as the run goes, and records how each publish
 * ended: acknowledged (with its id), refused (it did not happen) or unknown (no answer).
 */
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { PublishRecord, PublishStatus } from './model.js';
import type { TokenMint } from './recorder.js';

export type PublishOnce = (channel: string, data: unknown) => Promise<{ status: PublishStatus; id?: string | undefined }>;

export class Publisher {
  readonly records: PublishRecord[] = [];
  #seq = 0;
  #stopped = false;
  #done: Promise<void> = Promise.resolve();
  /** Milliseconds between publishes now; the run changes it. */
  delayMs = 100;

  constructor(
    readonly door: string,
    readonly channel: string,
    private readonly once: PublishOnce,
  ) {}

  start(): void {
    this.#done = this.#loop();
  }

  /** Stops after the publish in flight; resolves when it has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }

  /** The newest acknowledged sequence number (-1: none yet). */
  get newestAcked(): number {
    for (let i = this.records.length - 1; i >= 0; i--) if (this.records[i]!.status === 'acked') return this.records[i]!.seq;
    return -1;
  }

  async publishOne(): Promise<PublishRecord> {
    const seq = this.#seq++;
    const startedAt = Date.now();
    const outcome = await this.once(this.channel, { s: seq }).catch(() => ({ status: 'unknown' as const, id: undefined }));
    const record: PublishRecord = { door: this.door, channel: this.channel, seq, status: outcome.status, id: outcome.id, startedAt };
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

/** `POST /pub/{channel}` as a backend does (loopback, no key): 200 acked, 503 refused, else unknown. */
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
        (error: { reply?: unknown }) => ({ status: error.reply === undefined ? 'unknown' : 'refused' }),
      ),
    close: () => client.close(),
  };
}

/** `herald.publish` in-process: resolves acked; an engine outage (documented: nothing stored) refuses. */
export function apiPublish(publish: (channel: string, data: unknown) => Promise<{ id: string }>): PublishOnce {
  return (channel, data) =>
    publish(channel, data).then(
      (message) => ({ status: 'acked', id: message.id }),
      (error: { code?: string }) => ({ status: error.code === 'HERALD_ERR_ENGINE_UNAVAILABLE' ? 'refused' : 'unknown' }),
    );
}
