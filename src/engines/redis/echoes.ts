/**
 * @module
 * A node's own publishes waiting for pub/sub to bring them back to its listener. A publish
 * resolves after local subscribers have the message; handing it over directly instead would let
 * it overtake an earlier message of another node still on its way.
 */

interface Echo {
  readonly id: string;
  done(): void;
}

export class Echoes {
  readonly #waiting = new Map<string, Echo[]>();

  constructor(private readonly timeoutMs: number) {}

  /**
   * Resolves once `id` (or a later id) of `channel` has arrived, or after the timeout: pub/sub may
   * have dropped it (catching up brings it later), and the publish happened regardless.
   */
  wait(channel: string, id: string): Promise<void> {
    return new Promise((resolve) => {
      const echo = {
        id,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const waiting = this.#waiting.get(channel);
        const at = waiting?.indexOf(echo) ?? -1;
        if (at >= 0) waiting!.splice(at, 1);
        if (waiting?.length === 0) this.#waiting.delete(channel);
        resolve();
      }, this.timeoutMs);
      const waiting = this.#waiting.get(channel);
      if (waiting === undefined) this.#waiting.set(channel, [echo]);
      else waiting.push(echo);
    });
  }

  /** `id` of `channel` arrived (delivered, or passed over as seen): publishes up to it are done. */
  arrived(channel: string, id: string): void {
    const waiting = this.#waiting.get(channel);
    if (waiting === undefined) return;
    while (waiting.length > 0 && waiting[0]!.id <= id) waiting.shift()!.done();
    if (waiting.length === 0) this.#waiting.delete(channel);
  }

  /** Settles every wait (the engine is closing). */
  clear(): void {
    for (const waiting of this.#waiting.values()) for (const echo of waiting) echo.done();
    this.#waiting.clear();
  }
}
