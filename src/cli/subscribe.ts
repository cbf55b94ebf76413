/**
 * @module
 * `herald subscribe <channel>`: prints every message on a channel (or pattern) as a JSON line
 * `{"channel","id","data"}` until interrupted. Connection changes go to standard error, so the
 * output stays clean for a pipe. Uses the Herald client, so it reconnects and resumes by itself.
 */
import { WebSocket } from 'ws';
import { Herald } from '../client/index.js';
import type { WebSocketConstructor } from '../client/index.js';
import { parseCommand, serverUrl } from './client-options.js';

export const SUBSCRIBE_USAGE = `Usage: herald subscribe <channel> [--url URL] [--path PATH] [--since ID]

Prints each message on a channel or pattern (/stocks/**) as a JSON line until interrupted.

Options:
  --url    server URL (HERALD_URL, default http://127.0.0.1:8080)
  --path   Bayeux path on the server (default /bayeux)
  --since  also print what history holds after this message id
`;

export interface RunningSubscription {
  /** Resolves with the exit code once the client stops (on `stop()`, or when the server refuses it for good). */
  readonly done: Promise<number>;
  stop(): void;
}

export function subscribe(argv: readonly string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, err: NodeJS.WritableStream): RunningSubscription {
  const { positionals, values } = parseCommand(argv, { url: {}, path: {}, since: {} }, 1);
  const [channel] = positionals as [string];
  const url = new URL(values.path ?? '/bayeux', serverUrl(values.url, env));
  const client = new Herald(url.href, { WebSocket: WebSocket as unknown as WebSocketConstructor, shareConnection: false });
  let finish!: (code: number) => void;
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const log = (event: Record<string, unknown>) => err.write(`${JSON.stringify(event)}\n`);
  client.on('state', (state, detail) => {
    log({ state, transport: detail.transport, retryInMs: detail.delayMs, error: detail.error?.message });
    if (state === 'disconnected') finish(detail.error === undefined ? 0 : 1);
  });
  client.on('gap', (gapChannel) => log({ gap: gapChannel, message: 'messages were lost while disconnected' }));
  client.on('error', (error) => log({ error: error.message }));
  const subscription = client.subscribe(channel, (data, info) => out.write(`${JSON.stringify({ channel: info.channel, id: info.id, data })}\n`), {
    since: values.since,
  });
  subscription.ready.then(
    () => log({ subscribed: channel }),
    () => {
      finish(1);
      client.close();
    },
  );
  return {
    done,
    stop: () => {
      finish(0);
      client.close();
    },
  };
}
