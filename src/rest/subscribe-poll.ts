/**
 * @module
 * `GET /sub/{channel}` without a streaming transport: a long-poll. It answers at once with the
 * messages after `?since=` when history has any (a gap signal first when history no longer reaches
 * back), else holds until the next message or the timeout, answering a JSON array — empty at the
 * timeout. `?wait=0` is a short poll: never held. `?callback=` wraps the answer as JSONP.
 * The client polls again with `since` = the last id it got.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ParsedChannel } from '../core/channel.js';
import type { Engine } from '../core/engine.js';
import type { Hub } from '../core/hub.js';
import type { Message } from '../core/message.js';
import type { ResumeReason } from '../core/session.js';
import type { SessionStore } from '../core/session-store.js';
import { jsonpCallback, sendJsonp } from '../transports/callback-polling.js';
import { HttpError, sendError, sendJson } from '../transports/http.js';
import { REST_JSON } from './rest-channel.js';

export interface SubscribePollOptions {
  readonly timeoutMs: number;
}

export class SubscribePoll {
  constructor(
    private readonly sessions: SessionStore,
    private readonly hub: Hub,
    private readonly engine: Engine,
    private readonly options: SubscribePollOptions,
  ) {}

  async serve(req: IncomingMessage, res: ServerResponse, channel: ParsedChannel, since: string | undefined, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
    let callback: string | undefined;
    try {
      if (query.has('callback')) callback = jsonpCallback(query, 'callback');
    } catch (error) {
      if (error instanceof HttpError) return sendError(res, error.status, error.message, headers);
      throw error;
    }
    const wait = query.get('wait');
    if (wait !== null && wait !== '0') return sendError(res, 400, 'wait must be 0 (a short poll) or absent', headers);
    const reply = (parts: string[]) => {
      const body = `[${parts.join(',')}]`;
      if (callback === undefined) sendJson(res, 200, body, headers);
      else sendJsonp(res, callback, body, headers);
    };

    // A held poll subscribes before reading history: a message published in between is then
    // queued, not missed. A short poll only reads history.
    const session = wait === null ? this.sessions.create(req.socket.remoteAddress) : undefined;
    if (session !== undefined) await this.hub.subscribe(session, channel.name);
    const backlog: string[] = [];
    if (since !== undefined) {
      if (channel.wildcard === 'none') {
        const page = await this.engine.history(channel.name, { since });
        if (page.gap) backlog.push(gapSignal(channel.name, since));
        backlog.push(...page.messages.map((message: Message) => REST_JSON.encode(message)));
      } else {
        backlog.push(gapSignal(channel.name, since));
      }
    }
    if (backlog.length > 0 || session === undefined || res.destroyed) {
      if (session !== undefined) this.sessions.close(session, 'client');
      reply(backlog);
      return;
    }
    const waiter = {
      resume: (reason: ResumeReason) => {
        const deliveries = reason === 'messages' ? session.drain() : [];
        this.sessions.close(session, 'client');
        reply(deliveries.map((delivery) => delivery.encode(REST_JSON)));
      },
    };
    session.hold(waiter, this.options.timeoutMs);
    res.once('close', () => {
      if (res.writableEnded) return;
      session.cancelHold(waiter);
      this.sessions.close(session, 'client');
    });
  }
}

function gapSignal(channel: string, since: string): string {
  return JSON.stringify({ gap: true, channel, since });
}
