/**
 * @module
 * The client's publishes on the wire: each waits for the server's answer, and one whose connection
 * breaks first is rejected rather than sent twice (it may or may not have reached the server).
 */
import type { Connection } from './connection.js';
import type { Message } from './protocol.js';
import type { PublishReply } from './upstream.js';

/** A publish the server refused, or one whose fate is unknown because the connection broke. */
export class PublishError extends Error {
  constructor(
    message: string,
    readonly reply?: Message,
  ) {
    super(message);
    this.name = 'PublishError';
  }
}

export interface QueuedPublish {
  readonly channel: string;
  readonly data: unknown;
  resolve(reply: PublishReply): void;
  reject(error: Error): void;
}

/** Sends each publish on `connection`, settling it with the server's answer. */
export function sendPublishes(connection: Connection, publishes: readonly QueuedPublish[]): void {
  for (const publish of publishes) {
    connection.request({ channel: publish.channel, data: publish.data }).then(
      (reply) => {
        if (reply.successful !== true) {
          publish.reject(new PublishError(`publish to ${publish.channel} refused: ${reply.error ?? 'no reason given'}`, reply));
          return;
        }
        const messageId = reply.ext?.herald?.id;
        publish.resolve({ channel: reply.channel, successful: true, messageId: typeof messageId === 'string' ? messageId : undefined, data: reply.data });
      },
      (error: Error) =>
        // The message may or may not have reached the server: say so rather than send it twice.
        publish.reject(new PublishError(`the connection broke before the server answered the publish to ${publish.channel}: ${error.message}`)),
    );
  }
}
