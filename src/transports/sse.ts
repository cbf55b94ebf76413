/**
 * @module
 * Server-sent events for plain subscriptions: an event per message with its id in `id:` (so a
 * browser's EventSource resumes with `Last-Event-ID`), `retry:` advice, comment heartbeats, and
 * `event: gap` when messages were lost, and `event: close` naming why the server ends the stream
 * (a token expired, say). Ids are base36, so they never hold CR or LF. Presence events are
 * `event: join` / `event: leave` / `event: count`, without an id: Last-Event-ID stays on the last message.
 */
import type { Message, WireFormat } from '../core/message.js';
import type { StreamFormat } from './push-stream.js';
import { SSE_PADDING } from './push-stream.js';

export function sseFormat(messageFormat: WireFormat, retryMs: number): StreamFormat {
  return {
    contentType: 'text/event-stream; charset=utf-8',
    preamble: `${SSE_PADDING}retry: ${retryMs}\n\n`,
    frame: { encode: (message: Message, json?: string) => (message.event === undefined ? `id: ${message.id}\n` : `event: ${message.event}\n`) + `data: ${messageFormat.encode(message, json)}\n\n` },
    heartbeat: ':\n\n',
    // With an id, EventSource moves its Last-Event-ID past the gap: a reconnect is not told it again.
    gap: (channel, since, resumeFrom) => `event: gap\n${resumeFrom === undefined ? '' : `id: ${resumeFrom}\n`}data: ${JSON.stringify({ channel, lastEventId: since })}\n\n`,
    farewell: (reason, note) => `event: close\ndata: ${JSON.stringify({ reason, note })}\n\n`,
  };
}
