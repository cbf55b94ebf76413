/**
 * @module
 * What every door's subscriber shares: the record of what it observed (the model's input), the
 * checker's data format, and the short-lived tokens clients carry when the run expires tokens.
 */
import { SignJWT } from 'jose';
import type { Observation, SubscriberRecord } from './model.js';

/** What the checker's publishers put in each message: its channel's sequence number. */
export interface CheckerData {
  readonly s: number;
}

/** What the application route of the checker's topology answers through `herald.piggyback`: it must reach the caller unchanged. */
export const APP_BODY = { valid: false, errors: [{ field: 'name', message: 'required' }] };
export const APP_STATUS = 422;

export const seqOf = (data: unknown): number | undefined =>
  typeof data === 'object' && data !== null && typeof (data as CheckerData).s === 'number' ? (data as CheckerData).s : undefined;

export class Recorder {
  readonly observations: Observation[] = [];
  readyAt: number | undefined;
  #gapOnly = 0;
  #gapOnlyRun = 0;

  constructor(
    readonly name: string,
    readonly door: string,
    readonly target: string,
  ) {}

  ready(): void {
    this.readyAt ??= Date.now();
  }

  deliver(channel: string, data: unknown, id?: string): void {
    this.observations.push({ kind: 'deliver', at: Date.now(), channel, seq: seqOf(data), id });
  }

  gap(target: string, note?: string): void {
    this.observations.push({ kind: 'gap', at: Date.now(), target, note });
  }

  note(text: string): void {
    this.observations.push({ kind: 'note', at: Date.now(), text });
  }

  stop(reason: string): void {
    this.observations.push({ kind: 'stop', at: Date.now(), reason });
  }

  /**
   * One answer (a poll's reply, a stream's life) ended: `gaps` signals and `messages` deliveries it
   * carried. Answers with gaps alone, in a row, are counted: a client answered only that spins.
   */
  answered(gaps: number, messages: number): void {
    if (messages > 0) this.#gapOnly = 0;
    else if (gaps > 0) this.#gapOnlyRun = Math.max(this.#gapOnlyRun, ++this.#gapOnly);
  }

  /** The newest sequence number delivered on `channel` (to know when a subscriber has caught up). */
  newest(channel: string): number {
    let newest = -1;
    for (const o of this.observations) if (o.kind === 'deliver' && o.channel === channel && (o.seq ?? -1) > newest) newest = o.seq!;
    return newest;
  }

  get stopped(): boolean {
    return this.observations.some((o) => o.kind === 'stop');
  }

  record(): SubscriberRecord {
    return { name: this.name, door: this.door, target: this.target, readyAt: this.readyAt, observations: [...this.observations], gapOnlyRun: this.#gapOnlyRun };
  }
}

export const JWT_SECRET = 'the-delivery-checker-secret-of-32-chars!';

/**
 * JWTs granting `/ck/**`. Each expires at the next planned token-expiry moment (or in an hour),
 * so a fault "token-expiry" at T makes every token handed out before T run out at T.
 */
export class TokenMint {
  #current = '';
  #currentExp = 0;
  #signing: Promise<string> = Promise.resolve('');

  constructor(private readonly expiries: readonly number[]) {}

  /** A token valid now, signed fresh. */
  async fresh(): Promise<string> {
    const now = Date.now();
    const next = this.expiries.find((t) => t > now + 1000);
    const exp = Math.floor((next ?? now + 3_600_000) / 1000);
    if (exp !== this.#currentExp) {
      this.#currentExp = exp;
      this.#signing = new SignJWT({ subscribe: ['/ck/**'], publish: ['/ck/**'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('checker')
        .setExpirationTime(exp)
        .sign(Buffer.from(JWT_SECRET))
        .then((token) => (this.#current = token));
    }
    return this.#signing;
  }

  /** The last token signed (for synchronous callers: CometD and Faye extensions); keep it fresh with `fresh()`. */
  get current(): string {
    return this.#current;
  }
}
