/**
 * @module
 * Server extensions, run in order on every incoming message and every outgoing reply, like
 * Faye's: `async (message, context) => message | null`. Returning null drops the message; setting
 * `message.error` stops an incoming message and returns that error to its sender.
 *
 * Deliveries to subscribers are not passed through outgoing hooks: one published message is
 * encoded once and shared by every recipient. Shape a message on its way in instead.
 */
import type { RequestContext } from '../core/protocol.js';
import type { BayeuxMessage } from './message.js';

const EXTENSION_FAILED = '500::extension_failed';

export interface ExtensionContext extends RequestContext {
  /** The session's clientId, once known. */
  readonly clientId?: string | undefined;
}

export type ExtensionHook = (
  message: BayeuxMessage,
  context: ExtensionContext,
) => BayeuxMessage | null | Promise<BayeuxMessage | null>;

export interface Extension {
  readonly incoming?: ExtensionHook;
  readonly outgoing?: ExtensionHook;
}

export class ExtensionPipeline {
  readonly #incoming: ExtensionHook[] = [];
  readonly #outgoing: ExtensionHook[] = [];

  use(extension: Extension): void {
    if (extension.incoming) this.#incoming.push(extension.incoming);
    if (extension.outgoing) this.#outgoing.push(extension.outgoing);
  }

  get isEmpty(): boolean {
    return this.#incoming.length === 0 && this.#outgoing.length === 0;
  }

  /** `context` is only called when some extension will use it: most servers run none. */
  incoming(message: BayeuxMessage, context: () => ExtensionContext): Promise<BayeuxMessage | null> | BayeuxMessage {
    return this.#incoming.length === 0 ? message : run(this.#incoming, message, context());
  }

  outgoing(message: BayeuxMessage, context: () => ExtensionContext): Promise<BayeuxMessage | null> | BayeuxMessage {
    return this.#outgoing.length === 0 ? message : run(this.#outgoing, message, context());
  }
}

async function run(hooks: readonly ExtensionHook[], message: BayeuxMessage, context: ExtensionContext): Promise<BayeuxMessage | null> {
  let current: BayeuxMessage | null = message;
  for (const hook of hooks) {
    try {
      current = await hook(current, context);
    } catch {
      // A failing extension fails its message, never the request or the process.
      return { ...message, successful: false, error: EXTENSION_FAILED };
    }
    if (current === null || current.error !== undefined) return current;
  }
  return current;
}
