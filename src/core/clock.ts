/**
 * @module
 * Time, injected so that tests can drive timeouts and expiry with fake timers.
 */
export interface Timer {
  /** Restarts the timer with its original delay (cheaper than clear + set). */
  refresh(): void;
}

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
  setInterval(callback: () => void, ms: number): Timer;
  clearInterval(timer: Timer): void;
}

/** The real clock. Looks the globals up at call time so node:test mock timers apply. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref?.();
    return timer;
  },
  clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
  setInterval: (callback, ms) => {
    const timer = setInterval(callback, ms);
    timer.unref?.();
    return timer;
  },
  clearInterval: (timer) => clearInterval(timer as ReturnType<typeof setInterval>),
};
