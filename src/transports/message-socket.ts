/**
 * @module
 * WebSocket for plain subscriptions: a text frame per message, each frame built once and shared.
 */
import { CLOSE_REASONS, closeTextOf } from '../core/close-reasons.js';
import type { CloseReason } from '../core/close-reasons.js';
import type { Delivery, Message, WireFormat } from '../core/message.js';
import type { Duplex } from 'node:stream';
import type { Stream } from '../core/session.js';
import type { PeerShared } from './ws-connection.js';
import { WsPeer } from './ws-connection.js';
import { textFrame } from './ws-frames.js';

export function messageFrames(messageFormat: WireFormat): WireFormat<Buffer> {
  return { encode: (message: Message, json?: string) => textFrame(messageFormat.encode(message, json)) };
}

/** A WebSocket that is one subscription's stream: one object per socket, with its peer. */
export class MessageSocket extends WsPeer implements Stream {
  constructor(
    raw: Duplex,
    shared: PeerShared,
    private readonly frames: WireFormat<Buffer>,
  ) {
    super(raw, shared);
  }

  push(deliveries: Delivery[]): boolean {
    return this.sendDeliveries(deliveries, this.frames);
  }

  /** Tells the client that messages on `channel` after `since` (all recent ones, without it) are gone. */
  signalGap(channel: string, since?: string): void {
    if (this.isOpen) this.sendText(JSON.stringify({ gap: true, channel, since }));
  }

  /** The socket is the subscription: it ends with its session, saying why (a no-op if the client closed it). */
  sessionClosed(reason: CloseReason, note?: string): void {
    this.close(CLOSE_REASONS[reason].closeCode, closeTextOf(reason, note));
  }
}
