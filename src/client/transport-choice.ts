/**
 * @module
 * Which transport the link opens its next session on: the best first; the next one down when one
 * cannot open, or keeps being cut soon after it opens; interval polling, the last resort, when
 * held requests are cut at a steady age (a proxy's timeout); and, from any fallback, when to try
 * the best one again (climbing back). Decisions only: the link owns the sessions and the timers.
 */
import type { Reconnect } from './connection.js';
import { HoldCuts } from './hold-cuts.js';
import type { ConnectionType } from './protocol.js';

export type IntervalPolling = 'fallback' | 'always' | 'never';

export interface TransportChoiceOptions {
  /** Connection types to use, best first (already limited to what the environment has). */
  readonly transports: readonly ConnectionType[];
  /** After falling back, try the better transport again after this long (doubling each time it fails); 0 = never. */
  readonly upgradeAfterMs: number;
  /**
   * Interval polling: `fallback` when held requests keep being cut (climbing back later, as from
   * any fallback), `always` from the start, or `never`.
   */
  readonly intervalPolling: IntervalPolling;
}

/** Connection types that can poll: each request ends, so a proxy that cuts held ones lets them through. */
const POLLING_TYPES: readonly ConnectionType[] = ['long-polling', 'callback-polling'];

const MAX_UPGRADE_DELAY_FACTOR = 16;
/**
 * A better transport that worked before is tried again this soon after a fallback: it most likely
 * failed only because the server was down when it was tried (a restart), not because the network
 * blocks it.
 */
const PROVEN_RETRY_MS = 1000;
/** Sessions cut before they were stable, in a row, after which the next transport is tried. */
const SHORT_LIVED_LIMIT = 3;

export class TransportChoice {
  /** Position in `transports` of the current candidate. */
  #index = 0;
  /** In interval polling: no connect is held (the last resort, after every transport's holds were cut). */
  #polling: boolean;
  #upgradeDelayMs: number;
  /** Transports that have carried a session in this client's life. */
  readonly #proven = new Set<ConnectionType>();
  #quickUpgradeTried = false;
  /** Sessions lost soon after they opened, in a row: a transport that keeps being cut gives way. */
  #shortLived = 0;
  readonly #cuts = new HoldCuts();
  /** Climbed back from interval polling, and not yet shown that held requests last now. */
  #climbedFromPolling = false;

  constructor(private readonly options: TransportChoiceOptions) {
    this.#upgradeDelayMs = options.upgradeAfterMs;
    this.#polling = options.intervalPolling === 'always';
  }

  /** In interval polling now. */
  get polling(): boolean {
    return this.#polling;
  }

  /** The best transport: the one climbed back to. */
  get best(): ConnectionType {
    return this.options.transports[0]!;
  }

  /** What the next session opens on (in interval polling, it polls). */
  get candidate(): ConnectionType {
    return this.#polling ? this.#pollingType() : this.options.transports[this.#index]!;
  }

  /** A session opened on `type`. */
  adopted(type: ConnectionType): void {
    this.#proven.add(type);
  }

  /**
   * A session could not be opened (`refused`: the server's handshake said no). True: try the next
   * transport at once; false: start over from the best, after a back-off.
   */
  openFailed(refused: boolean): boolean {
    // A transport that cannot even open gives way at once to the next; the server being down or
    // refusing us costs a back-off before the whole list is tried again.
    if (!refused && this.#index + 1 < this.options.transports.length) {
      this.#index++;
      return true;
    }
    this.#index = 0;
    return false;
  }

  /** A working session ended; `stable`: it had lasted long enough to count as a success. */
  lost(stable: boolean, reconnect: Reconnect): void {
    if (stable) this.#shortLived = 0;
    if (!this.#polling && this.options.intervalPolling === 'fallback' && this.#cuts.cutAfterMs !== undefined) {
      this.#enterPolling();
    } else if (!stable && reconnect === 'retry' && ++this.#shortLived >= SHORT_LIVED_LIMIT && this.#index + 1 < this.options.transports.length) {
      // Opens, then is cut, again and again (a proxy that kills WebSockets after a while): the
      // next transport may hold.
      this.#shortLived = 0;
      this.#index++;
    }
  }

  /** A held request (connect, event stream, WebSocket) ended after `heldMs`: `cut` before its time, or answered. */
  holdEnded(heldMs: number, cut: boolean): void {
    this.#cuts.record(heldMs, cut);
    if (!cut && this.#climbedFromPolling && this.#cuts.cutAfterMs === undefined) {
      // A hold outlived the cuts: the climb back held, and the next fallback starts afresh.
      this.#climbedFromPolling = false;
      this.#upgradeDelayMs = this.options.upgradeAfterMs;
    }
  }

  /** How long after adopting a session to try the best transport again; undefined when on it already, or never. */
  upgradeDelayMs(): number | undefined {
    if (this.options.upgradeAfterMs <= 0 || this.options.intervalPolling === 'always') return undefined;
    if (this.#index === 0 && !this.#polling) return undefined;
    let delayMs = this.#upgradeDelayMs;
    if (!this.#quickUpgradeTried && this.#proven.has(this.best)) {
      this.#quickUpgradeTried = true;
      delayMs = Math.min(delayMs, PROVEN_RETRY_MS);
    }
    return delayMs;
  }

  /** A session on the best transport opened from a fallback: the link moves over to it. */
  climbed(): void {
    this.#index = 0;
    if (this.#polling) {
      // Held requests may be cut still: the delay is reset only once one outlives the cuts.
      this.#polling = false;
      this.#climbedFromPolling = true;
    } else {
      this.#upgradeDelayMs = this.options.upgradeAfterMs;
      this.#quickUpgradeTried = false;
    }
  }

  /** The best transport could not be opened: the next try waits twice as long. */
  climbFailed(): void {
    this.#lengthenUpgradeDelay();
  }

  /** What interval polling runs on: the current candidate or the next one whose requests end, else the first such. */
  #pollingType(): ConnectionType {
    const { transports } = this.options;
    const from = transports.findIndex((type, index) => index >= this.#index && POLLING_TYPES.includes(type));
    const any = transports.findIndex((type) => POLLING_TYPES.includes(type));
    return transports[from >= 0 ? from : any >= 0 ? any : this.#index]!;
  }

  /**
   * Held requests keep being cut at the same age (a proxy's timeout): the session about to be
   * opened polls instead. The better transports are tried again later, as from any fallback.
   */
  #enterPolling(): void {
    this.#polling = true;
    this.#shortLived = 0;
    // The transport is not down, the network cuts it: no quick retry; and a climb that ended here
    // again waits twice as long before the next.
    this.#quickUpgradeTried = true;
    if (this.#climbedFromPolling) this.#lengthenUpgradeDelay();
    this.#climbedFromPolling = false;
  }

  #lengthenUpgradeDelay(): void {
    this.#upgradeDelayMs = Math.min(this.#upgradeDelayMs * 2, this.options.upgradeAfterMs * MAX_UPGRADE_DELAY_FACTOR);
  }
}
