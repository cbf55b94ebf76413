/**
 * @module
 * `multipart/mixed`, a part per message. The boundary is fixed per server so a message's part is
 * encoded once; a payload cannot forge it, because every `--boundary` inside the JSON is written
 * with its first `-` as `\u002d`, which JSON reads back as the same text (the boundary can only
 * occur inside a JSON string). Heartbeats are empty text parts.
 */
import type { Message, WireFormat } from '../core/message.js';
import type { StreamFormat } from './push-stream.js';

export function multipartFormat(messageFormat: WireFormat, boundary: string): StreamFormat {
  const delimiter = `--herald-${boundary}`;
  const part = (json: string) => `${delimiter}\r\nContent-Type: application/json\r\n\r\n${json.replaceAll(delimiter, `\\u002d${delimiter.slice(1)}`)}\r\n`;
  return {
    contentType: `multipart/mixed; boundary=${delimiter.slice(2)}`,
    preamble: '',
    frame: { encode: (message: Message, json?: string) => part(messageFormat.encode(message, json)) },
    heartbeat: `${delimiter}\r\nContent-Type: text/plain\r\n\r\n\r\n`,
    gap: (channel, since) => part(JSON.stringify({ gap: true, channel, since })),
    farewell: (reason, note) => part(JSON.stringify({ closed: true, reason, note })),
  };
}
