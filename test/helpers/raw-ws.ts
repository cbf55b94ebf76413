/** A hand-written Bayeux-over-WebSocket peer: frames in, frames out, nothing hidden. */
import { once } from 'node:events';
import WebSocket from 'ws';
import { withTimeout } from './wait.js';

export class RawWs {
  readonly frames: any[] = [];
  closed: { code: number; reason: string } | undefined;
  #waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()));
      for (const wake of this.#waiters.splice(0)) wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const wake of this.#waiters.splice(0)) wake();
    });
    ws.on('error', () => {});
  }

  static async open(port: number, path = '/bayeux', headers: Record<string, string> = {}): Promise<RawWs> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    await withTimeout('the WebSocket to open', once(ws, 'open'));
    return new RawWs(ws);
  }

  send(messages: unknown): void {
    this.ws.send(typeof messages === 'string' ? messages : JSON.stringify(messages));
  }

  /** Waits until some received message satisfies `match`, and returns it. */
  async next(what: string, match: (message: any) => boolean, timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.flat().find(match);
      if (found !== undefined) return found;
      if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await withTimeout(what, new Promise<void>((resolve) => this.#waiters.push(resolve)), deadline - Date.now()).catch(() => {});
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    if (this.closed) return this.closed;
    await withTimeout('the socket to close', once(this.ws, 'close'), timeoutMs);
    return this.closed!;
  }

  close(): void {
    this.ws.close();
  }
}
