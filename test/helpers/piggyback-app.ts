/** An application's server with Herald attached, whose `/validate` answers through `herald.piggyback` (issue 19.3). */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald, HeraldOptions } from '../../src/server/create-herald.js';
import { onCleanup } from './cleanup.js';

type Hookable = { after(fn: () => unknown): void };

/** What `/validate` answers, with status 422: a form's validation errors. */
export const VALIDATION_BODY = { valid: false, errors: [{ field: 'name', message: 'required' }] };

export interface PiggybackApp {
  readonly herald: Herald;
  readonly port: number;
  readonly origin: string;
  /** The headers of each request `/validate` answered. */
  readonly seen: IncomingHttpHeaders[];
}

export async function startPiggybackApp(t: Hookable, options: HeraldOptions = {}): Promise<PiggybackApp> {
  const herald = createHerald(options);
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    if (req.url !== '/validate') return void res.writeHead(404).end();
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.statusCode = 422;
      res.setHeader('Vary', 'Origin');
      herald.piggyback(req, res, VALIDATION_BODY);
    });
  });
  herald.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(t, async () => {
    await herald.close();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  return { herald, port, origin: `http://127.0.0.1:${port}`, seen };
}
