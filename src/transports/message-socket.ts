/**
 * @module
 * WebSocket for plain subscriptions: a text frame per message, each frame built once and shared.
 */
import type { Delivery, Message, WireFormat } from '../core/message.js';
import type { CloseReason, Stream } from '../core/session.js';
import type { WsPeer } from './websocket.js';
import { CLOSE, textFrame } from './websocket.js';

export function messageFrames(messageFormat: WireFormat): WireFormat<Buffer> {
  return { encode: (message: Message) => textFrame(Buffer.from(messageFormat.encode(message))) };
}

export class MessageSocket implements Stream {
  constructor(
    private readonly peer: WsPeer,
    private readonly frames: WireFormat<Buffer>,
  ) {}

  push(deliveries: Delivery[]): boolean {
    if (!this.peer.isOpen) return false;
    for (const delivery of deliveries) this.peer.sendFrame(delivery.encode(this.frames));
    return true;
  }

  sessionClosed(reason: CloseReason): void {
    if (reason === 'shutdown') this.peer.close(CLOSE.goingAway, 'server shutting down');
    else if (reason === 'queue_full') this.peer.close(CLOSE.tryAgainLater, 'slow consumer: message queue full');
    else if (reason === 'token_expired') this.peer.close(CLOSE.policyViolation, 'token expired: subscribe again with a fresh one');
  }
}
