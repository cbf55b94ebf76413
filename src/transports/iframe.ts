/**
 * @module
 * The forever iframe: an HTML page that never ends, a `<script>` per message calling
 * `parent.<callback>(message)`. Padding first, since old browsers render nothing before 1 KiB or
 * so. The JSON is made safe inside a script element: `<` is escaped (it can only occur inside a
 * JSON string), so no `</script>` can end it early; U+2028/2029 too, for old JavaScript engines.
 * `callback` is a checked name (callback-polling.ts), never raw request text.
 */
import type { Message, WireFormat } from '../core/message.js';
import type { CallbackName } from './callback-polling.js';
import type { StreamFormat } from './push-stream.js';

/** What the forever iframe calls when the request names no callback. */
export const IFRAME_CALLBACK = 'herald';

export function iframeFormat(messageFormat: WireFormat, callback: CallbackName): StreamFormat {
  const script = (json: string) => `<script>h(${json.replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')})</script>\n`;
  return {
    contentType: 'text/html; charset=utf-8',
    preamble: `<!doctype html><html><head><meta charset="utf-8"><script>var h=function(m){parent.${callback}(m)}</script></head><body>\n<!--${' '.repeat(2048)}-->\n`,
    frame: { encode: (message: Message, json?: string) => script(messageFormat.encode(message, json)) },
    heartbeat: '<!-- -->\n',
    gap: (channel, since) => script(JSON.stringify({ gap: true, channel, since })),
    farewell: (reason, note) => script(JSON.stringify({ closed: true, reason, note })),
  };
}
