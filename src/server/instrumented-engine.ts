/**
 * @module
 * An Engine that times every call to the engine it wraps and counts failures by operation: the
 * round trips to Redis (or the memory engine's, for comparison) as operators see them.
 */
import type { ControlCommand, Revocation } from '../core/control.js';
import type { ControlListener, Engine, EngineHealth, GapListener, HistoryPage, HistoryQuery, Inquiry, InquiryAnswers, InquiryResponder, MessageListener, PresenceEntry, PresenceJoin, PresenceListener, Published, PublishRequest, UserSweep } from '../core/engine.js';
import type { Message } from '../core/message.js';
import type { Outbox } from '../core/outbox.js';

export type EngineOperation = 'publish' | 'subscribe' | 'unsubscribe' | 'history' | 'position' | 'join' | 'leave' | 'presence' | 'deleteHistory' | 'broadcast' | 'revoke' | 'inquire' | 'users';

export interface EngineObserver {
  /** `seconds` the call took; `failed` when it rejected. */
  (operation: EngineOperation, seconds: number, failed: boolean): void;
}

export class InstrumentedEngine implements Engine {
  constructor(
    readonly inner: Engine,
    private readonly observe: EngineObserver,
    private readonly onPublished: (message: Message) => void,
  ) {}

  publish(request: PublishRequest): Promise<Published> {
    return this.#time('publish', this.inner.publish(request), this.#counted);
  }

  /** A duplicate (its idempotency key used already) published nothing: it is not counted. */
  readonly #counted = (message: Published): void => {
    if (message.duplicate !== true) this.onPublished(message);
  };

  subscribe(pattern: string): Promise<void> {
    return this.#time('subscribe', this.inner.subscribe(pattern));
  }

  unsubscribe(pattern: string): Promise<void> {
    return this.#time('unsubscribe', this.inner.unsubscribe(pattern));
  }

  history(channel: string, query?: HistoryQuery): Promise<HistoryPage> {
    return this.#time('history', this.inner.history(channel, query));
  }

  position(channel: string): Promise<string> {
    return this.#time('position', this.inner.position(channel));
  }

  join(channel: string, entry: PresenceJoin): Promise<void> {
    return this.#time('join', this.inner.join(channel, entry));
  }

  leave(channel: string, session: string): Promise<void> {
    return this.#time('leave', this.inner.leave(channel, session));
  }

  presence(channel: string): Promise<readonly PresenceEntry[]> {
    return this.#time('presence', this.inner.presence(channel));
  }

  onPresence(listener: PresenceListener): void {
    this.inner.onPresence(listener);
  }

  /** Not timed: the outbox is webhooks' traffic, off the paths clients wait on. */
  outbox(name: string, maxLength: number): Outbox {
    return this.inner.outbox(name, maxLength);
  }

  userConnected(user: string): Promise<boolean> {
    return this.#time('users', this.inner.userConnected(user));
  }

  userDisconnected(user: string): Promise<boolean> {
    return this.#time('users', this.inner.userDisconnected(user));
  }

  sweepUsers(graceMs: number): Promise<UserSweep> {
    return this.#time('users', this.inner.sweepUsers(graceMs));
  }

  deleteHistory(channel: string): Promise<void> {
    return this.#time('deleteHistory', this.inner.deleteHistory(channel));
  }

  broadcast(command: ControlCommand): Promise<void> {
    return this.#time('broadcast', this.inner.broadcast(command));
  }

  revoke(revocation: Revocation): Promise<Revocation> {
    return this.#time('revoke', this.inner.revoke(revocation));
  }

  onControl(listener: ControlListener): void {
    this.inner.onControl(listener);
  }

  get nodeId(): string {
    return this.inner.nodeId;
  }

  inquire(inquiry: Inquiry, waitMs: number): Promise<InquiryAnswers> {
    return this.#time('inquire', this.inner.inquire(inquiry, waitMs));
  }

  onInquiry(responder: InquiryResponder): void {
    this.inner.onInquiry(responder);
  }

  health(): EngineHealth {
    return this.inner.health();
  }

  onMessage(listener: MessageListener): void {
    this.inner.onMessage(listener);
  }

  onGap(listener: GapListener): void {
    this.inner.onGap(listener);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** `then`: told of the result too, in the same turn (a publish costs one promise step, not two). */
  #time<T>(operation: EngineOperation, call: Promise<T>, then?: (value: T) => void): Promise<T> {
    const started = performance.now();
    return call.then(
      (value) => {
        this.observe(operation, (performance.now() - started) / 1000, false);
        then?.(value);
        return value;
      },
      (error: unknown) => {
        this.observe(operation, (performance.now() - started) / 1000, true);
        throw error;
      },
    );
  }
}
