/**
 * @module
 * `herald publish <channel> <json|->`: publishes through the REST API (`POST /pub/…`) and prints
 * the server's answer, one JSON line per message. With `-`, each line of standard input is a
 * message, published in order: a feed can be piped in.
 */
import { createInterface } from 'node:readline';
import { HeraldError } from '../core/errors.js';
import { parseCommand, serverUrl } from './client-options.js';

export const PUBLISH_USAGE = `Usage: herald publish <channel> <json|-> [--url URL] [--key KEY]

Publishes a JSON message on a channel, e.g.
  herald publish /stocks/ACME '{"symbol":"ACME","price":12.34}'
With -, reads one JSON message per line from standard input.

Options:
  --url   server URL (HERALD_URL, default http://127.0.0.1:8080)
  --key   publish key; prefer HERALD_PUBLISH_KEY, which other users cannot read in the process list
          (not needed for a server on loopback without one)
`;

/** Returns the exit code: 0 when every message was published. */
export async function publish(argv: readonly string[], env: NodeJS.ProcessEnv, stdin: NodeJS.ReadableStream, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { positionals, values } = parseCommand(argv, { url: {}, key: {} }, 2);
  const [channel, message] = positionals as [string, string];
  if (!channel.startsWith('/')) throw new HeraldError('HERALD_ERR_INVALID_CHANNEL', `channel must start with /, got ${JSON.stringify(channel)}`);
  const base = serverUrl(values.url, env);
  const key = values.key ?? env.HERALD_PUBLISH_KEY;
  if (key && base.protocol === 'http:' && !LOOPBACK_HOSTS.has(base.hostname)) {
    err.write(`herald: warning: sending the publish key in clear text to ${base.host}; use https://\n`);
  }
  const target = new URL(`/pub${channel.split('/').map(encodeURIComponent).join('/')}`, base);
  const send = async (json: string, where: string): Promise<void> => {
    try {
      JSON.parse(json);
    } catch (error) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${where} is not JSON (${(error as Error).message}); quote a string as '"text"'`);
    }
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (key !== undefined && key !== '') headers.Authorization = `Bearer ${key}`;
    let response: Response;
    try {
      response = await fetch(target, { method: 'POST', headers, body: json });
    } catch (error) {
      throw new PublishFailed(`cannot reach ${base.origin}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
    }
    const body = await response.text();
    if (!response.ok) throw new PublishFailed(`the server refused the message (HTTP ${response.status}): ${body.trim()}`);
    out.write(`${body.trim()}\n`);
  };
  if (message !== '-') {
    await send(message, 'the message');
    return 0;
  }
  let line = 0;
  for await (const text of createInterface({ input: stdin, crlfDelay: Infinity })) {
    line++;
    if (text.trim() !== '') await send(text, `line ${line} of standard input`);
  }
  return 0;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The server could not be reached or said no: exit code 1, not a usage error. */
export class PublishFailed extends Error {
  override name = 'PublishFailed';
}
