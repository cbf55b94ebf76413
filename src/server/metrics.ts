/**
 * @module
 * `GET /metrics` in Prometheus' text format (npm `prom-client`). Counts that change on hot paths
 * (deliveries, refusals) are kept as plain numbers by their owners and read at scrape time;
 * gauges walk the sessions once per scrape. Only latency and engine round trips are observed as
 * they happen — latency once per message, not per recipient.
 *
 * Each Herald has a registry of its own (several may share a process, as tests do); the process
 * metrics (CPU, memory, event-loop lag, GC) come from one registry per process.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine } from '../core/engine.js';
import type { Hub } from '../core/hub.js';
import type { LimitCounters } from '../core/limits.js';
import { LIMIT_NAMES } from '../core/limits.js';
import type { MemoryBudget } from '../core/memory-budget.js';
import type { Delivery, Message } from '../core/message.js';
import type { SessionStore } from '../core/session-store.js';
import type { EngineOperation } from './instrumented-engine.js';
import type { WebhookCounters } from './webhooks.js';

/** Where the gauges read from, at scrape time. */
export interface MetricSources {
  readonly sessions: SessionStore;
  readonly hub: Hub;
  /** The engine as configured (not the instrumented wrapper): only it knows its history counts. */
  readonly engine: Engine;
  readonly counters: LimitCounters;
  /** The memory budget history and queues share. */
  readonly memory?: MemoryBudget;
  /** Open connections by transport, now. */
  readonly connections: () => Record<string, number>;
}

let processRegistry: Registry | undefined;

/** CPU, memory, GC and event-loop lag of this process, collected once however many Heralds it runs. */
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'herald_process_' });
  }
  return processRegistry;
}

export class Metrics {
  readonly #registry = new Registry();
  readonly #latency: Histogram;
  readonly #engineSeconds: Histogram;
  readonly #engineErrors: Counter;
  /** Deliveries discarded with their session (closed with messages still queued). */
  #discarded = 0;
  /** Messages published through this node so far. */
  publishedCount = 0;
  /** Messages published here, by channel, for the dashboard's busiest channels (bounded). */
  readonly #perChannel = new Map<string, number>();
  /** What webhooks count: events dropped, requests sent. */
  readonly webhooks: WebhookCounters;

  constructor(sources: MetricSources) {
    const registers = [this.#registry];
    const { sessions, hub, engine, counters } = sources;
    let census = sessions.census();
    // One walk per scrape, shared by the gauges that read it: the first collect refreshes it.
    const fresh = () => (census = sessions.census());

    new Gauge({
      name: 'herald_connections',
      help: 'Open connections by transport (tcp: every socket; the others: what they carry).',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset();
        for (const [transport, count] of Object.entries(sources.connections())) this.set({ transport }, count);
      },
    });
    new Gauge({ name: 'herald_sessions', help: 'Live sessions (Bayeux clients and REST subscriptions).', registers, collect() { this.set(fresh().sessions); } });
    new Gauge({ name: 'herald_subscriptions', help: 'Subscriptions held by live sessions.', registers, collect() { this.set(census.subscriptions); } });
    new Gauge({ name: 'herald_channels', help: 'Channels and patterns with local subscribers.', registers, collect() { this.set(hub.patternCount); } });
    new Gauge({ name: 'herald_queued_deliveries', help: 'Deliveries waiting in session queues.', registers, collect() { this.set(census.queued); } });
    new Gauge({
      name: 'herald_queue_depth_max',
      help: 'The longest session queue (a slow consumer shows here first).',
      registers,
      collect() {
        this.set(census.deepestQueues[0]?.queued ?? 0);
      },
    });
    const self = this;
    new Counter({ name: 'herald_messages_published_total', help: 'Messages published through this node.', registers, collect() { setCounts(this, [[{}, self.publishedCount]]); } });
    new Counter({ name: 'herald_messages_received_total', help: 'Messages the engine handed to this node for its subscribers.', registers, collect() { setCounts(this, [[{}, hub.messagesIn]]); } });
    new Counter({ name: 'herald_messages_delivered_total', help: 'Deliveries queued to local sessions.', registers, collect() { setCounts(this, [[{}, hub.deliveriesQueued]]); } });
    new Counter({
      name: 'herald_messages_dropped_total',
      help: 'Deliveries lost by reason: slow_consumer (policy drop-oldest) or session_closed (queued when the session ended).',
      labelNames: ['reason'],
      registers,
      collect() {
        setCounts(this, [
          [{ reason: 'slow_consumer' }, counters.get('queue_dropped')],
          [{ reason: 'session_closed' }, self.#discarded],
        ]);
      },
    });
    new Counter({
      name: 'herald_limit_refusals_total',
      help: 'What each limit refused (queue_closed: slow consumers disconnected).',
      labelNames: ['limit'],
      registers,
      collect() {
        setCounts(this, LIMIT_NAMES.map((limit) => [{ limit }, counters.get(limit)]));
      },
    });
    const webhookDropped = new Counter({ name: 'herald_webhook_events_dropped_total', help: 'Webhook events dropped by reason: pending (a receiver further behind than --webhook-max-pending), attempts (every attempt failed) or engine (the engine could not store it).', labelNames: ['reason'], registers });
    const webhookRequests = new Counter({ name: 'herald_webhook_requests_total', help: 'Webhook requests sent by outcome: ok (2xx) or failed (another status, an error or a timeout).', labelNames: ['outcome'], registers });
    this.webhooks = {
      dropped: (count, reason) => webhookDropped.inc({ reason }, count),
      sent: (ok) => webhookRequests.inc({ outcome: ok ? 'ok' : 'failed' }),
    };
    const { memory } = sources;
    if (memory !== undefined) {
      new Gauge({ name: 'herald_memory_budget_bytes', help: 'Bytes history and session queues may hold together (--memory-budget).', registers, collect() { this.set(memory.budgetBytes); } });
      new Gauge({
        name: 'herald_memory_bytes',
        help: 'Bytes held against the memory budget, by account (history; queues: each message once, however many queues share it).',
        labelNames: ['account'],
        registers,
        collect() {
          const usage = memory.usage();
          this.set({ account: 'history' }, usage.historyBytes);
          this.set({ account: 'queues' }, usage.queueBytes);
        },
      });
      new Counter({
        name: 'herald_memory_evictions_total',
        help: 'What the memory budget took back: history messages forgotten (resumers get a gap), sessions the slow-consumer policy acted on.',
        labelNames: ['account'],
        registers,
        collect() {
          setCounts(this, [
            [{ account: 'history' }, counters.get('memory_history')],
            [{ account: 'queues' }, counters.get('memory_queues')],
          ]);
        },
      });
    }
    if (engine.idempotencyKeysForgotten !== undefined) {
      const forgotten = () => engine.idempotencyKeysForgotten!();
      new Counter({
        name: 'herald_idempotency_keys_forgotten_total',
        help: 'Idempotency keys forgotten before their window ended, past --idempotency-max-keys (a retry with one of them publishes again).',
        registers,
        collect() {
          setCounts(this, [[{}, forgotten()]]);
        },
      });
    }
    if (engine.historyCounts !== undefined) {
      const counts = () => engine.historyCounts!();
      new Gauge({ name: 'herald_history_messages', help: 'Messages kept in history on this node.', registers, collect() { this.set(counts().messages); } });
      new Gauge({ name: 'herald_history_channels', help: 'Channels with history on this node.', registers, collect() { this.set(counts().channels); } });
    }
    this.#latency = new Histogram({
      name: 'herald_delivery_latency_seconds',
      help: 'From publish (the engine accepting it) to the first recipient taking it for sending.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.#engineSeconds = new Histogram({
      name: 'herald_engine_seconds',
      help: 'Engine (Redis) round trips by operation.',
      labelNames: ['operation'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2],
      registers,
    });
    this.#engineErrors = new Counter({ name: 'herald_engine_errors_total', help: 'Engine calls that failed, by operation.', labelNames: ['operation'], registers });
    processMetrics();
  }

  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;

  /** Where parts with metrics of their own (the decision hooks) register them. */
  get registry(): Registry {
    return this.#registry;
  }

  /** The text exposition of every metric, this Herald's and the process's. */
  async render(): Promise<string> {
    return Registry.merge([this.#registry, processMetrics()]).metrics();
  }

  readonly observeEngine = (operation: EngineOperation, seconds: number, failed: boolean): void => {
    this.#engineSeconds.observe({ operation }, seconds);
    if (failed) this.#engineErrors.inc({ operation });
  };

  /** A message this node published: counted, and by channel for the busiest-channels list. */
  readonly published = (message: Message): void => {
    this.publishedCount++;
    const count = (this.#perChannel.get(message.channel) ?? 0) + 1;
    if (count === 1 && this.#perChannel.size >= MAX_TRACKED_CHANNELS) return;
    this.#perChannel.set(message.channel, count);
  };

  readonly observeFirstSent = (delivery: Delivery): void => {
    this.#latency.observe(Math.max(0, Date.now() - delivery.message.publishedAt) / 1000);
  };

  sessionClosed(queued: number): void {
    this.#discarded += queued;
  }

  /** The channels with most publishes since the last call, and forgets the counts. */
  takeBusiestChannels(top = 10): { channel: string; messages: number }[] {
    const ranked = [...this.#perChannel].sort((a, b) => b[1] - a[1]).slice(0, top);
    this.#perChannel.clear();
    return ranked.map(([channel, messages]) => ({ channel, messages }));
  }
}

const MAX_TRACKED_CHANNELS = 10_000;

/** Sets a counter to absolute counts read from their owner (which only ever go up). */
function setCounts(counter: Counter, counts: [Record<string, string>, number][]): void {
  counter.reset();
  for (const [labels, value] of counts) counter.inc(labels, value);
}
