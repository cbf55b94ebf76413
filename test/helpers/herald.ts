/** Starts a real Herald on a free loopback port and closes it after the test. */
import type { TestContext } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald, HeraldOptions } from '../../src/server/create-herald.js';
import { onCleanup } from './cleanup.js';

export interface RunningHerald {
  herald: Herald;
  port: number;
  url: string;
}

export async function startHerald(t: TestContext | { after(fn: () => unknown): void }, options: HeraldOptions = {}): Promise<RunningHerald> {
  const herald = createHerald(options);
  const address = await herald.listen(0, '127.0.0.1');
  onCleanup(t, () => herald.close());
  return { herald, port: address.port, url: `http://127.0.0.1:${address.port}` };
}
