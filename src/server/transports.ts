/**
 * @module
 * The transports, wired: the ways a client's connection is held — Bayeux long-polling (and
 * callback-polling), WebSocket and EventSource, and the REST subscribe door's streams and polls —
 * built from the settings, and acted on together where the server needs them all at once: counts
 * for metrics and stats, and the steps of a drain.
 */
import type { BayeuxServer } from '../bayeux/bayeux-server.js';
import { BAYEUX_JSON, BAYEUX_JSON_WITH_ID } from '../bayeux/message.js';
import type { Engine } from '../core/engine.js';
import type { Hub } from '../core/hub.js';
import type { LimitCounters } from '../core/limits.js';
import type { SessionStore } from '../core/session-store.js';
import type { RestGate } from '../rest/rest-gate.js';
import { SubscribePoll } from '../rest/subscribe-poll.js';
import { RestSubscribe } from '../rest/subscribe.js';
import { EventSourceTransport } from '../transports/eventsource.js';
import type { LifecycleListener } from '../transports/http.js';
import { LongPollingTransport } from '../transports/long-polling.js';
import { WebSocketTransport } from '../transports/websocket.js';
import type { Settings, TransportName } from './options.js';

export interface TransportParts {
  readonly bayeux: BayeuxServer;
  readonly sessions: SessionStore;
  readonly hub: Hub;
  readonly engine: Engine;
  readonly gate: RestGate;
  readonly counters: LimitCounters;
  readonly config: Settings;
  /** Per-connection debug lines; undefined when debug logs go nowhere. */
  readonly lifecycle: LifecycleListener | undefined;
}

export interface Transports {
  readonly longPolling: LongPollingTransport;
  /** Undefined when the settings leave the transport out. */
  readonly webSocket: WebSocketTransport | undefined;
  readonly eventSource: EventSourceTransport | undefined;
  readonly restSubscribe: RestSubscribe;
  /** Open connections per transport (metrics `connections`, inspection), beside the TCP count. */
  openByTransport(): Record<string, number>;
  /** Drain, first step: each ends its connections, naming the reason. */
  closeAll(): void;
  /** Whether a connection is still open (drain waits for none, up to its grace). */
  busy(): boolean;
  /** Drain, past the grace: what is still open is cut. */
  destroyAll(): void;
}

export function wireTransports({ bayeux, sessions, hub, engine, gate, counters, config, lifecycle }: TransportParts): Transports {
  const enabled = new Set<TransportName>(config.transports);
  const longPolling = new LongPollingTransport(bayeux.handleBatch, {
    maxBodyBytes: config.maxBodyBytes,
    cookieAttributes: config.cookieAttributes,
    callbackPolling: enabled.has('callback-polling'),
    onTooLarge: () => counters.hit('body_size'),
  });
  const webSocket = enabled.has('websocket')
    ? new WebSocketTransport(bayeux.handleBatch, {
        maxPayloadBytes: config.maxBodyBytes,
        maxBufferedBytes: config.maxBufferedBytes,
        pingIntervalMs: config.pingIntervalMs,
        lifecycle,
        onTooLarge: () => counters.hit('body_size'),
        onSlowConsumer: () => counters.hit('send_buffer'),
        messageFormats: { plain: BAYEUX_JSON, withIds: BAYEUX_JSON_WITH_ID },
        keptHeaders: bayeux.keptHeaders,
      })
    : undefined;
  const eventSource = enabled.has('eventsource')
    ? new EventSourceTransport(bayeux.findSession, {
        heartbeatMs: config.heartbeatMs,
        maxBufferedBytes: config.maxBufferedBytes,
        retryMs: 1000,
        lifecycle,
        onSlowConsumer: () => counters.hit('send_buffer'),
        messageFormats: { plain: BAYEUX_JSON, withIds: BAYEUX_JSON_WITH_ID },
      })
    : undefined;
  const subscribePoll = new SubscribePoll(sessions, hub, engine, { timeoutMs: config.timeoutMs, maxQueue: config.maxQueue });
  const restSubscribe = new RestSubscribe(sessions, hub, engine, subscribePoll, gate, {
    heartbeatMs: config.heartbeatMs,
    maxBufferedBytes: config.maxBufferedBytes,
    retryMs: 2000,
    lifecycle,
    onSlowConsumer: () => counters.hit('send_buffer'),
  });
  return {
    longPolling,
    webSocket,
    eventSource,
    restSubscribe,
    openByTransport: () => ({
      websocket: webSocket?.openSockets ?? 0,
      eventsource: eventSource?.openStreams ?? 0,
      'http-stream': restSubscribe.openStreams,
      'long-polling': sessions.census(0).heldPolls,
    }),
    closeAll() {
      webSocket?.closeAll('shutdown');
      eventSource?.closeAll();
      restSubscribe.closeAll();
    },
    busy: () => longPolling.held.size > 0 || (webSocket?.openSockets ?? 0) > 0 || (eventSource?.openStreams ?? 0) > 0 || restSubscribe.openStreams > 0,
    destroyAll() {
      longPolling.held.destroyAll();
      webSocket?.terminateAll();
      eventSource?.destroyAll();
      restSubscribe.destroyAll();
    },
  };
}
