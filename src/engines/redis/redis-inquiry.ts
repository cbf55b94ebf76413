/**
 * @module
 * Questions put to every node of the cluster (inspection: which channels are live, where a user's
 * sessions are, each node's totals). The asker publishes the question on `<prefix>inquiry`, which
 * every node listens to; each other node answers on the asker's own `<prefix>reply:<node>`. The
 * asker knows whom to wait for from the live nodes presence keeps (redis-presence.ts), and waits
 * no longer than it was told: a node that died moments ago is reported as not answering. Nothing
 * is written to Redis, and nothing costs anything until someone asks.
 */
import type { Redis } from 'ioredis';
import type { Inquiry, InquiryAnswers, InquiryResponder } from '../../core/engine.js';
import { randomId } from '../../core/ids.js';

export interface RedisInquiryOptions {
  readonly keyPrefix: string;
  readonly nodeId: string;
  /** The nodes alive now, this one included. */
  readonly liveNodes: () => Promise<readonly string[]>;
  readonly onError: (error: unknown, context: string) => void;
}

interface Pending {
  readonly expected: Set<string>;
  readonly answers: { node: string; answer: unknown }[];
  readonly finish: () => void;
}

export class RedisInquiry {
  readonly #asks: string;
  readonly #replies: string;
  readonly #pending = new Map<string, Pending>();
  #responder: InquiryResponder | undefined;

  constructor(
    private readonly commands: Redis,
    private readonly subscriber: Redis,
    private readonly options: RedisInquiryOptions,
  ) {
    this.#asks = `${options.keyPrefix}inquiry`;
    this.#replies = `${options.keyPrefix}reply:${options.nodeId}`;
    subscriber.on('message', (channel: string, payload: string) => {
      if (channel === this.#asks) this.#answer(payload);
      else if (channel === this.#replies) this.#collect(payload);
    });
  }

  onInquiry(responder: InquiryResponder): void {
    this.#responder = responder;
  }

  /** The pub/sub connection is (re)made: listen for questions and for answers to this node's. */
  async connected(): Promise<void> {
    await this.subscriber.subscribe(this.#asks, this.#replies);
  }

  async inquire(inquiry: Inquiry, waitMs: number): Promise<InquiryAnswers> {
    const others = (await this.options.liveNodes()).filter((node) => node !== this.options.nodeId);
    if (others.length === 0) return { answers: [], unanswered: [] };
    const id = randomId();
    const expected = new Set(others);
    const answers: { node: string; answer: unknown }[] = [];
    let finish!: () => void;
    const done = new Promise<InquiryAnswers>((resolve) => {
      const timer = setTimeout(() => finish(), waitMs);
      finish = () => {
        clearTimeout(timer);
        this.#pending.delete(id);
        resolve({ answers, unanswered: [...expected] });
      };
    });
    this.#pending.set(id, { expected, answers, finish });
    try {
      await this.commands.publish(this.#asks, JSON.stringify({ id, from: this.options.nodeId, inquiry }));
    } catch (error) {
      finish();
      throw error;
    }
    return done;
  }

  /** Gives up every question still waiting (the engine closes): each resolves with what came. */
  close(): void {
    for (const pending of [...this.#pending.values()]) pending.finish();
  }

  #answer(payload: string): void {
    let asked: { id?: unknown; from?: unknown; inquiry?: unknown };
    try {
      asked = JSON.parse(payload);
    } catch (error) {
      this.options.onError(error, 'unreadable inquiry');
      return;
    }
    const { id, from, inquiry } = asked;
    // The asker answers itself, without a round trip.
    if (from === this.options.nodeId || typeof id !== 'string' || typeof from !== 'string' || typeof inquiry !== 'object' || inquiry === null || this.#responder === undefined) return;
    let answer: unknown;
    try {
      answer = this.#responder(inquiry as Inquiry);
    } catch (error) {
      this.options.onError(error, 'answering an inquiry');
      return;
    }
    this.commands
      .publish(`${this.options.keyPrefix}reply:${from}`, JSON.stringify({ id, node: this.options.nodeId, answer }))
      .catch((error: unknown) => this.options.onError(error, 'answering an inquiry'));
  }

  #collect(payload: string): void {
    let reply: { id?: unknown; node?: unknown; answer?: unknown };
    try {
      reply = JSON.parse(payload);
    } catch (error) {
      this.options.onError(error, 'unreadable inquiry answer');
      return;
    }
    const pending = typeof reply.id === 'string' ? this.#pending.get(reply.id) : undefined;
    if (pending === undefined || typeof reply.node !== 'string') return;
    // A node that came up after the question was sent may answer too: what it holds counts.
    pending.expected.delete(reply.node);
    pending.answers.push({ node: reply.node, answer: reply.answer });
    if (pending.expected.size === 0) pending.finish();
  }
}
