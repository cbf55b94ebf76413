/**
 * @module
 * Makes a transport of a given type, and tells which types an environment can use at all.
 */
import type { ConnectionType } from '../protocol.js';
import { CallbackPollingTransport } from './callback-polling.js';
import { EventSourceTransport } from './eventsource.js';
import { LongPollingTransport } from './long-polling.js';
import type { Transport, TransportEnvironment, TransportSink } from './transport.js';
import { WebSocketTransport } from './websocket.js';

export function createTransport(type: ConnectionType, env: TransportEnvironment, sink: TransportSink): Transport {
  switch (type) {
    case 'websocket':
      return new WebSocketTransport(env, sink);
    case 'eventsource':
      return new EventSourceTransport(env, sink);
    case 'long-polling':
      return new LongPollingTransport(env, sink);
    case 'callback-polling':
      return new CallbackPollingTransport(env, sink);
  }
}

export function isAvailable(type: ConnectionType, env: TransportEnvironment): boolean {
  switch (type) {
    case 'websocket':
      return env.WebSocket !== undefined;
    case 'eventsource':
      return env.EventSource !== undefined && env.fetch !== undefined;
    case 'long-polling':
      return env.fetch !== undefined;
    case 'callback-polling':
      return env.document !== undefined;
  }
}
