/**
 * @module
 * `POST /pub/{channel}` publishes the body (JSON when sent as JSON, else text) and answers
 * `{ id, channel, subscribers }`; with an `Idempotency-Key` header, a retry within the window is
 * answered with the first publish's id and `duplicate: true`, and stores nothing. `POST /pub`
 * publishes a JSON array of `{channel, data, idempotencyKey?}` and answers a result per item
 * (core/batch.ts). `DELETE /pub/{channel}` drops the channel's history. Messages published here
 * reach Bayeux subscribers too: there is one engine.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { batchStatus, publishBatch, readBatch, REFUSAL_STATUS } from '../core/batch.js';
import type { BatchAdmission } from '../core/batch.js';
import type { Engine } from '../core/engine.js';
import type { AddressRates, LimitCounters } from '../core/limits.js';
import { describeRefusal } from '../core/publisher.js';
import type { Publisher } from '../core/publisher.js';
import { clientAddress, HttpError, isJson, parseJson, readBody, sendError, sendJson, sendRefusal } from '../transports/http.js';
import { channelFromPath } from './rest-channel.js';
import type { RestGate, RestVerdict } from './rest-gate.js';

/** `POST /pub` itself: a batch. */
export const BATCH_PATH = '/pub';

export interface RestPublishOptions {
  readonly maxBodyBytes: number;
  /** Messages one batch may carry (413 above). */
  readonly maxBatchMessages: number;
  readonly counters: LimitCounters;
  /**
   * The rate of publishes by clients (a token's holder), per address. The backend — the publish
   * key, or loopback without one — is not limited: it is who the server publishes for.
   */
  readonly addressRates?: AddressRates;
}

type Headers = Record<string, string | string[]>;

export class RestPublish {
  constructor(
    private readonly engine: Engine,
    private readonly publisher: Publisher,
    private readonly gate: RestGate,
    private readonly options: RestPublishOptions,
  ) {}

  /** `path`: what follows `/pub/`. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, headers: Headers): Promise<void> {
    const named = channelFromPath(path, false);
    if (!('channel' in named)) return sendError(res, named.status, named.error, headers);
    const channel = named.channel.name;
    const verdict = await this.gate(req, query, req.method === 'DELETE' ? 'manage' : 'publish', channel);
    if (!verdict.ok) return sendRefusal(res, verdict, headers);
    if (req.method === 'DELETE') {
      await this.engine.deleteHistory(channel);
      res.writeHead(204, headers).end();
      return;
    }
    if (req.method !== 'POST') return sendError(res, 405, `method ${req.method} not allowed: POST publishes, DELETE drops history`, { ...headers, Allow: 'POST, DELETE, OPTIONS' });
    if (this.#overRate(req, verdict)) return sendError(res, 429, this.#rateError(), { ...headers, 'Retry-After': '1' });
    const header = req.headers['idempotency-key'];
    const idempotencyKey = Array.isArray(header) ? header.join(', ') : header;
    let data: unknown;
    try {
      const body = await this.#read(req);
      if (body.length === 0) throw new HttpError(400, 'empty body: send JSON (Content-Type: application/json) or text');
      data = isJson(req.headers['content-type']) ? parseJson(body) : body;
    } catch (error) {
      return this.#refuseBody(res, error, headers);
    }
    if (verdict.review !== undefined) {
      // The backend is asked only about data that could be published.
      const refusal = this.publisher.checkData(data);
      if (refusal !== undefined) return sendError(res, REFUSAL_STATUS[refusal.reason], describeRefusal(refusal), headers);
      const reviewed = await verdict.review(data);
      if (!reviewed.ok) return sendRefusal(res, reviewed, headers);
      data = reviewed.data;
    }
    const outcome = await this.publisher.publish(channel, data, idempotencyKey);
    if (!outcome.ok) return sendError(res, REFUSAL_STATUS[outcome.reason], describeRefusal(outcome), headers);
    // `{id, channel, subscribers, duplicate?}`, written out: every publish answers it.
    const duplicate = outcome.duplicate ? ',"duplicate":true' : '';
    sendJson(res, 200, `{"id":${JSON.stringify(outcome.message.id)},"channel":${JSON.stringify(channel)},"subscribers":${outcome.subscribers}${duplicate}}`, headers);
  }

  /**
   * `POST /pub`: a JSON array of `{channel, data, idempotencyKey?}`. Answers `{published, failed,
   * results}`, one result per item in order: `{status: 200, id, channel, subscribers, duplicate?}`
   * or `{status, channel?, error}` (see batchStatus for the status of the whole). JSON only: a
   * form post from another site cannot send it without the browser asking first.
   */
  async serveBatch(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, headers: Headers): Promise<void> {
    if (req.method !== 'POST') return sendError(res, 405, `method ${req.method} not allowed: POST a JSON array of messages to publish a batch`, { ...headers, Allow: 'POST, OPTIONS' });
    let input: unknown;
    try {
      if (!isJson(req.headers['content-type'])) throw new HttpError(415, 'send the batch as JSON (Content-Type: application/json)');
      const body = await this.#read(req);
      if (body.length === 0) throw new HttpError(400, 'empty body: send a JSON array of messages');
      input = parseJson(body);
    } catch (error) {
      return this.#refuseBody(res, error, headers);
    }
    const batch = readBatch(input, this.options.maxBatchMessages);
    if (!batch.ok) {
      if (batch.tooMany === true) this.options.counters.hit('batch_messages');
      return sendError(res, batch.tooMany === true ? 413 : 400, batch.error, headers);
    }
    // The gate is asked once per channel of the batch: a token may publish on some channels and not others.
    const verdicts = new Map<string, Promise<RestVerdict>>();
    const admit: BatchAdmission = async (item) => {
      let verdict = verdicts.get(item.channel);
      if (verdict === undefined) verdicts.set(item.channel, (verdict = this.gate(req, query, 'publish', item.channel)));
      const decided = await verdict;
      if (!decided.ok) return { status: decided.status, error: decided.error };
      if (this.#overRate(req, decided)) return { status: 429, error: this.#rateError() };
      if (decided.review === undefined) return undefined;
      const refusal = this.publisher.checkData(item.data);
      if (refusal !== undefined) return { status: REFUSAL_STATUS[refusal.reason], error: describeRefusal(refusal) };
      const reviewed = await decided.review(item.data);
      return reviewed.ok ? { data: reviewed.data } : { status: reviewed.status, error: reviewed.error };
    };
    const results = await publishBatch(this.publisher, batch.value, admit);
    const published = results.filter((result) => result.status === 200).length;
    sendJson(res, batchStatus(results), JSON.stringify({ published, failed: results.length - published, results }), headers);
  }

  /** A client (a token's holder or one the publish hook judges, not the backend) past its address's rate. */
  #overRate(req: IncomingMessage, verdict: RestVerdict & { ok: true }): boolean {
    const rates = this.options.addressRates;
    const client = verdict.principal !== undefined || verdict.review !== undefined;
    return client && rates !== undefined && !rates.allow(clientAddress(req));
  }

  #rateError(): string {
    const rate = this.options.addressRates?.rate ?? 0;
    return `too many messages per second from this address (at most ${rate}, bursts of ${rate * 2})`;
  }

  async #read(req: IncomingMessage): Promise<string> {
    return (await readBody(req, this.options.maxBodyBytes)).toString('utf8');
  }

  #refuseBody(res: ServerResponse, error: unknown, headers: Headers): void {
    if (!(error instanceof HttpError)) throw error;
    if (error.status === 413) this.options.counters.hit('body_size');
    sendError(res, error.status, error.message, error.status === 413 ? { ...headers, Connection: 'close' } : headers);
  }
}
