/**
 * @module
 * `herald publish <channel> <json|->`: publishes through the REST API (`POST /pub/…`) and prints
 * the server's answer, one JSON line per message. With `-`, each line of standard input is a
 * message, published in order: a feed can be piped in. With `--batch <file|->`, a JSON array of
 * `{channel, data, idempotencyKey?}` goes in one request (`POST /pub`).
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { HeraldError } from '../core/errors.js';
import { parseCommand, serverUrl } from './client-options.js';

export const PUBLISH_USAGE = `Usage: herald publish <channel> <json|-> [--idempotency-key KEY] [--url URL] [--key KEY]
       herald publish --batch <file|-> [--url URL] [--key KEY]

Publishes a JSON message on a channel, e.g.
  herald publish /stocks/ACME '{"symbol":"ACME","price":12.34}'
With -, reads one JSON message per line from standard input. With --idempotency-key, publishing
again with the same key (within the server's --idempotency-window) publishes nothing and prints
the first publish's id: a script may retry safely. With --batch, publishes a JSON array of
{"channel", "data", "idempotencyKey"?} from a file (or standard input) in one request and prints
a result per message; the exit code is 1 if any was not published.

Options:
  --url   server URL (HERALD_URL, default http://127.0.0.1:8080)
  --key   publish key; prefer HERALD_PUBLISH_KEY, which other users cannot read in the process list
          (not needed for a server on loopback without one)
`;

/** Returns the exit code: 0 when every message was published. */
export async function publish(argv: readonly string[], env: NodeJS.ProcessEnv, stdin: NodeJS.ReadableStream, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const batch = argv.includes('--batch');
  const { positionals, values } = parseCommand(argv, { url: {}, key: {}, batch: {}, 'idempotency-key': {} }, batch ? 0 : 2);
  const [channel, message] = positionals as [string, string];
  if (!batch && !channel.startsWith('/')) throw new HeraldError('HERALD_ERR_INVALID_CHANNEL', `channel must start with /, got ${JSON.stringify(channel)}`);
  const idempotencyKey = values['idempotency-key'];
  if (idempotencyKey !== undefined && (batch || message === '-')) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', '--idempotency-key names one message: give each message of a batch its own idempotencyKey');
  }
  const base = serverUrl(values.url, env);
  const key = values.key ?? env.HERALD_PUBLISH_KEY;
  if (key && base.protocol === 'http:' && !LOOPBACK_HOSTS.has(base.hostname)) {
    err.write(`herald: warning: sending the publish key in clear text to ${base.host}; use https://\n`);
  }
  const target = new URL(batch ? '/pub' : `/pub${channel.split('/').map(encodeURIComponent).join('/')}`, base);
  const send = async (json: string, where: string): Promise<string> => {
    try {
      JSON.parse(json);
    } catch (error) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${where} is not JSON (${(error as Error).message}); quote a string as '"text"'`);
    }
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (key !== undefined && key !== '') headers.Authorization = `Bearer ${key}`;
    if (idempotencyKey !== undefined) headers['Idempotency-Key'] = idempotencyKey;
    let response: Response;
    try {
      response = await fetch(target, { method: 'POST', headers, body: json });
    } catch (error) {
      throw new PublishFailed(`cannot reach ${base.origin}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
    }
    const body = await response.text();
    if (!response.ok) throw new PublishFailed(`the server refused the message (HTTP ${response.status}): ${body.trim()}`);
    out.write(`${body.trim()}\n`);
    return body;
  };
  if (batch) {
    const source = values.batch!;
    const text = source === '-' ? await readAll(stdin) : await readFile(source, 'utf8').catch((error: Error) => {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `--batch: cannot read ${JSON.stringify(source)}: ${error.message}`);
    });
    const answer = JSON.parse(await send(text, source === '-' ? 'standard input' : source)) as { failed?: number; results?: unknown[] };
    if (!answer.failed) return 0;
    err.write(`herald: ${answer.failed} of ${answer.results?.length ?? '?'} messages were not published (see each result's error)\n`);
    return 1;
  }
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

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
  return text;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The server could not be reached or said no: exit code 1, not a usage error. */
export class PublishFailed extends Error {
  override name = 'PublishFailed';
}
