/**
 * @module
 * `POST /pub/{channel}` publishes the body (JSON when sent as JSON, else text) and answers
 * `{ id, channel, subscribers }`; `DELETE /pub/{channel}` drops the channel's history. Messages
 * published here reach Bayeux subscribers too: there is one engine.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../core/engine.js';
import type { AddressRates, LimitCounters } from '../core/limits.js';
import { describeRefusal } from '../core/publisher.js';
import type { Publisher } from '../core/publisher.js';
import { clientAddress, HttpError, isJson, parseJson, readBody, sendError, sendJson, sendRefusal } from '../transports/http.js';
import { channelFromPath } from './rest-channel.js';
import type { RestGate } from './rest-gate.js';

export interface RestPublishOptions {
  readonly maxBodyBytes: number;
  readonly counters: LimitCounters;
  /**
   * The rate of publishes by clients (a token's holder), per address. The backend — the publish
   * key, or loopback without one — is not limited: it is who the server publishes for.
   */
  readonly addressRates?: AddressRates;
}

export class RestPublish {
  constructor(
    private readonly engine: Engine,
    private readonly publisher: Publisher,
    private readonly gate: RestGate,
    private readonly options: RestPublishOptions,
  ) {}

  /** `path`: what follows `/pub/`. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, headers: Record<string, string | string[]>): Promise<void> {
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
    const rates = this.options.addressRates;
    if (verdict.principal !== undefined && rates !== undefined && !rates.allow(clientAddress(req))) {
      return sendError(res, 429, `too many messages per second from this address (at most ${rates.rate}, bursts of ${rates.rate * 2})`, { ...headers, 'Retry-After': '1' });
    }
    let data: unknown;
    try {
      const body = (await readBody(req, this.options.maxBodyBytes)).toString('utf8');
      if (body.length === 0) throw new HttpError(400, 'empty body: send JSON (Content-Type: application/json) or text');
      data = isJson(req.headers['content-type']) ? parseJson(body) : body;
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      if (error.status === 413) this.options.counters.hit('body_size');
      return sendError(res, error.status, error.message, error.status === 413 ? { ...headers, Connection: 'close' } : headers);
    }
    const outcome = await this.publisher.publish(channel, data);
    if (!outcome.ok) return sendError(res, outcome.reason === 'too_large' ? 413 : 400, describeRefusal(outcome), headers);
    sendJson(res, 200, JSON.stringify({ id: outcome.message.id, channel, subscribers: outcome.subscribers }), headers);
  }
}
