/** A hand-written Bayeux long-polling peer: sends exactly what a test says, keeps its cookie. */
import { postJson } from './http.js';
import type { RawResponse } from './http.js';

export class RawBayeux {
  clientId = '';
  cookie: string | undefined;
  #nextId = 0;

  constructor(
    readonly port: number,
    readonly path = '/bayeux',
  ) {}

  nextId(): string {
    return String(++this.#nextId);
  }

  async send(messages: unknown, path = this.path): Promise<RawResponse> {
    const headers: Record<string, string> = {};
    if (this.cookie !== undefined) headers.Cookie = this.cookie;
    const res = await postJson(this.port, path, messages, headers);
    const setCookie = res.headers['set-cookie']?.[0];
    if (setCookie !== undefined) this.cookie = setCookie.split(';')[0];
    return res;
  }

  async handshake(extra: Record<string, unknown> = {}): Promise<any> {
    const res = await this.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: this.nextId(), ...extra }]);
    const [reply] = res.json();
    if (reply.successful) this.clientId = reply.clientId;
    return reply;
  }

  connectMessage(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { channel: '/meta/connect', clientId: this.clientId, connectionType: 'long-polling', id: this.nextId(), ...extra };
  }

  /** Sends one connect; resolves with the whole response (reply + deliveries). */
  connect(extra: Record<string, unknown> = {}): Promise<RawResponse> {
    return this.send([this.connectMessage(extra)]);
  }

  async subscribe(subscription: string | string[]): Promise<any> {
    const res = await this.send([{ channel: '/meta/subscribe', clientId: this.clientId, subscription, id: this.nextId() }]);
    return res.json()[0];
  }

  async publish(channel: string, data: unknown): Promise<any> {
    const message: Record<string, unknown> = { channel, data, id: this.nextId() };
    if (this.clientId !== '') message.clientId = this.clientId;
    const res = await this.send([message]);
    return res.json();
  }

  /** Handshake and the first (immediate) connect: after this a connect is held. */
  async open(): Promise<void> {
    const reply = await this.handshake();
    if (!reply.successful) throw new Error(`handshake failed: ${JSON.stringify(reply)}`);
    await this.connect({ advice: { timeout: 0 } });
  }
}
