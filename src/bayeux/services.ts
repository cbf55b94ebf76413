/**
 * @module
 * Service channels (`/service/**`): request/response between one client and the server. Messages
 * published there are never broadcast; a handler's result goes back to the sender alone.
 */
import { expandChannel } from '../core/channel.js';

export interface ServiceRequest {
  readonly channel: string;
  readonly data: unknown;
  /** The sender's clientId, when the publish came from a session. */
  readonly clientId: string | undefined;
  /** The `sub` of the sender's verified token; undefined when anonymous. */
  readonly subject: string | undefined;
  /** Every claim of the sender's verified token; undefined when anonymous. */
  readonly claims: Readonly<Record<string, unknown>> | undefined;
}

/** Returns the data to send back to the sender, or undefined to send only the acknowledgement. */
export type ServiceHandler = (request: ServiceRequest) => unknown | Promise<unknown>;

export class ServiceRegistry {
  readonly #handlers = new Map<string, ServiceHandler>();

  /** Registers a handler for a service channel or pattern (`/service/echo`, `/service/rpc/**`). */
  add(pattern: string, handler: ServiceHandler): void {
    this.#handlers.set(pattern, handler);
  }

  /** The handler for a concrete channel: the exact one first, then the most specific pattern. */
  find(channel: string): ServiceHandler | undefined {
    for (const pattern of expandChannel(channel)) {
      const handler = this.#handlers.get(pattern);
      if (handler !== undefined) return handler;
    }
    return undefined;
  }
}
