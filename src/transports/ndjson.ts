/**
 * @module
 * Chunked HTTP streaming, one JSON message per line (NDJSON); a blank line is the heartbeat.
 */
import type { Message, WireFormat } from '../core/message.js';
import type { StreamFormat } from './push-stream.js';

export function ndjsonFormat(messageFormat: WireFormat): StreamFormat {
  return {
    contentType: 'application/x-ndjson; charset=utf-8',
    preamble: '',
    frame: { encode: (message: Message, json?: string) => `${messageFormat.encode(message, json)}\n` },
    heartbeat: '\n',
    gap: (channel, since) => `${JSON.stringify({ gap: true, channel, since })}\n`,
    farewell: (reason, note) => `${JSON.stringify({ closed: true, reason, note })}\n`,
  };
}
