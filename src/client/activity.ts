/**
 * @module
 * Whether anyone is looking: interval polling slows down while the page is hidden (Page
 * Visibility) or its user idle (no input for a while), and speeds up again the moment either
 * changes. Outside a browser there is no page: the client counts as visible and active unless
 * the application says otherwise through its own `ActivitySource`.
 */

/** What the poll scheduler asks of the page (or of whatever stands for it in Node). */
export interface ActivitySource {
  /** True while the page is hidden or its user idle: polls may come further apart. */
  isResting(): boolean;
  /** Calls `wake` each time the page becomes visible or its user active again; returns a function that stops it. */
  onWake(wake: () => void): () => void;
}

/** No page: always visible and active. */
export const ALWAYS_ACTIVE: ActivitySource = { isResting: () => false, onWake: () => () => undefined };

/** Input that shows a user is there (passive listeners: they never delay the page's own handling). */
const INPUT_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'scroll'] as const;

type EventHost = { addEventListener(type: string, listener: () => void, options?: object): void; removeEventListener(type: string, listener: () => void, options?: object): void };

/** The browser page's visibility and its user's input; `stop()` removes its listeners. */
export class PageActivity implements ActivitySource {
  readonly #wakes = new Set<() => void>();
  #lastInputAt: number;

  constructor(
    private readonly document: Document,
    private readonly window: EventHost,
    /** No input for this long: the user is idle. */
    private readonly idleAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#lastInputAt = now();
    document.addEventListener('visibilitychange', this.#visibilityChanged);
    for (const type of INPUT_EVENTS) window.addEventListener(type, this.#input, { passive: true, capture: true });
  }

  isResting(): boolean {
    return this.document.visibilityState === 'hidden' || this.#idle();
  }

  onWake(wake: () => void): () => void {
    this.#wakes.add(wake);
    return () => this.#wakes.delete(wake);
  }

  stop(): void {
    this.document.removeEventListener('visibilitychange', this.#visibilityChanged);
    for (const type of INPUT_EVENTS) this.window.removeEventListener(type, this.#input, { capture: true });
    this.#wakes.clear();
  }

  #idle(): boolean {
    return this.now() - this.#lastInputAt >= this.idleAfterMs;
  }

  readonly #visibilityChanged = (): void => {
    if (this.document.visibilityState === 'visible') this.#wake();
  };

  /** Only the input that ends an idle spell wakes the poller: a moving mouse must not poll on every event. */
  readonly #input = (): void => {
    const wasIdle = this.#idle();
    this.#lastInputAt = this.now();
    if (wasIdle && this.document.visibilityState !== 'hidden') this.#wake();
  };

  #wake(): void {
    for (const wake of [...this.#wakes]) wake();
  }
}
