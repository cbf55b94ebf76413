/**
 * @module
 * Many tabs, one connection. Tabs of one origin that talk to the same server elect a leader with a
 * Web Lock; the leader alone holds a server connection and relays over a BroadcastChannel: the
 * followers' subscriptions and publishes go to it, every delivery and state change comes back to
 * all. When the leader tab goes, the lock passes to a waiting tab, which connects and resumes each
 * channel from the last id the tabs saw, so nothing is lost in the handover.
 */
import type { Link } from './link.js';
import { PublishError } from './link.js';
import type { Downstream, PublishReply, State, StateDetail, Upstream } from './upstream.js';
import type { ConnectionType, PresenceEvent } from './protocol.js';

type Relay =
  | { t: 'hello'; from: string }
  | { t: 'leader'; from: string }
  | { t: 'want'; from: string; channel: string; since: string | undefined }
  | { t: 'unwant'; from: string; channel: string }
  | { t: 'bye'; from: string }
  | { t: 'publish'; from: string; ref: number; channel: string; data: unknown }
  | { t: 'published'; to: string; ref: number; reply?: PublishReply; error?: string }
  | { t: 'deliver'; channel: string; data: unknown; id: string | undefined; event?: PresenceEvent }
  | { t: 'state'; state: State; transport?: ConnectionType; polling?: boolean; delayMs?: number; error?: string }
  | { t: 'subscribed'; channel: string; error?: string }
  | { t: 'gap'; channel: string }
  | { t: 'server'; channel: string; subscribed: boolean; grant?: string | undefined };

interface PendingPublish {
  readonly channel: string;
  readonly data: unknown;
  resolve(reply: PublishReply): void;
  reject(error: Error): void;
}

/** True where tabs can share: BroadcastChannel and Web Locks (every current browser; not Node). */
export function canShareTabs(): boolean {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  return typeof BroadcastChannel === 'function' && typeof nav?.locks?.request === 'function' && typeof addEventListener === 'function';
}

export class TabShare implements Upstream {
  /** This tab's id on the channel. */
  readonly #tab = Math.random().toString(36).slice(2) + Date.now().toString(36);
  readonly #bus: BroadcastChannel;
  readonly #abort = new AbortController();
  /** This tab's own subscriptions and their resume points. */
  readonly #wanted = new Map<string, string | undefined>();
  readonly #publishes = new Map<number, PendingPublish>();
  /** The server subscriptions the leader was told of, with their grants: a new leader keeps them. */
  readonly #server = new Map<string, string>();
  /** Leader only: which tabs want each channel. */
  readonly #interest = new Map<string, Set<string>>();
  #link: Link | undefined;
  #lastState: Relay | undefined;
  #release: (() => void) | undefined;
  #nextRef = 0;
  #closed = false;
  /** The tab that leads, as far as this one knows. */
  #leader: string | undefined;
  // A page kept in the back/forward cache may come back: only a page really going away leaves.
  readonly #onPageHide = (event: PageTransitionEvent) => {
    if (!event.persisted) this.close();
  };

  /**
   * `name` keys both the lock and the channel (one per server URL). `makeLink` connects, seeded
   * with the ids this tab has seen (`seenIds`).
   */
  constructor(
    name: string,
    private readonly downstream: Downstream,
    private readonly makeLink: (downstream: Downstream, seenIds: ReadonlyMap<string, string>) => Link,
    private readonly seenIds: () => ReadonlyMap<string, string>,
  ) {
    this.#bus = new BroadcastChannel(name);
    this.#bus.onmessage = (event: MessageEvent<Relay>) => this.#onRelay(event.data);
    downstream.state('connecting', {});
    navigator.locks.request(name, { signal: this.#abort.signal }, () => this.#lead()).catch(() => {
      // Aborted: this tab closed while waiting its turn. Any other refusal (an opaque origin, a
      // sandboxed frame) leaves this tab on its own: it connects by itself rather than wait forever.
      if (!this.#closed && this.#link === undefined) void this.#lead();
    });
    this.#post({ t: 'hello', from: this.#tab });
    addEventListener('pagehide', this.#onPageHide);
  }

  want(channel: string, since: string | undefined): void {
    this.#wanted.set(channel, since);
    if (this.#link !== undefined) this.#addInterest(this.#tab, channel, since);
    // Until a leader is known, wants wait: it is told them all when it shows itself.
    else if (this.#leader !== undefined) this.#post({ t: 'want', from: this.#tab, channel, since });
  }

  unwant(channel: string): void {
    this.#wanted.delete(channel);
    if (this.#link !== undefined) this.#dropInterest(this.#tab, channel);
    else if (this.#leader !== undefined) this.#post({ t: 'unwant', from: this.#tab, channel });
  }

  publish(channel: string, data: unknown): Promise<PublishReply> {
    if (this.#closed) return Promise.reject(new PublishError('the client is closed'));
    if (this.#link !== undefined) return this.#link.publish(channel, data);
    return new Promise((resolve, reject) => {
      const ref = ++this.#nextRef;
      this.#publishes.set(ref, { channel, data, resolve, reject });
      if (this.#leader !== undefined) this.#post({ t: 'publish', from: this.#tab, ref, channel, data });
    });
  }

  /** Only the leader's connection can bring messages on a reply: another tab's requests go out as they are. */
  fetch(fetchImpl: typeof fetch, input: RequestInfo | URL, init: RequestInit | undefined): Promise<Response> {
    return this.#link !== undefined ? this.#link.fetch(fetchImpl, input, init) : fetchImpl(input, init);
  }

  close(): void {
    if (this.#closed) return;
    if (this.#link === undefined) this.#post({ t: 'bye', from: this.#tab });
    // Closed before the link, so its last state change is not relayed: the other tabs hear from
    // the next leader instead.
    this.#closed = true;
    removeEventListener('pagehide', this.#onPageHide);
    if (this.#link !== undefined) {
      this.#link.close();
      this.#link = undefined;
    } else {
      this.downstream.state('disconnected', {});
    }
    this.#abort.abort();
    this.#release?.();
    this.#bus.close();
    for (const publish of this.#publishes.values()) publish.reject(new PublishError('the client is closed'));
    this.#publishes.clear();
  }

  /** Holds the lock (and the connection) until this tab closes. */
  #lead(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const link = this.makeLink(this.#relaying(), this.seenIds());
    this.#link = link;
    const followedBefore = this.#leader !== undefined;
    this.#leader = this.#tab;
    for (const [channel, since] of this.#wanted) this.#addInterest(this.#tab, channel, this.seenIds().get(channel) ?? since);
    for (const [channel, grant] of this.#server) link.serverWant(channel, grant);
    if (followedBefore) {
      this.#abandonPublishes();
    } else {
      // Never handed to any leader: they go out now, once.
      for (const publish of this.#publishes.values()) link.publish(publish.channel, publish.data).then(publish.resolve, publish.reject);
      this.#publishes.clear();
    }
    this.#post({ t: 'leader', from: this.#tab });
    return new Promise((resolve) => {
      this.#release = resolve;
    });
  }

  /** The leader's view of its connection: this tab hears it directly, the others over the channel. */
  #relaying(): Downstream {
    return {
      deliver: (channel, data, id, event) => {
        this.downstream.deliver(channel, data, id, event);
        this.#post(event === undefined ? { t: 'deliver', channel, data, id } : { t: 'deliver', channel, data, id, event });
      },
      state: (state, detail) => {
        this.downstream.state(state, detail);
        this.#lastState = { t: 'state', state, transport: detail.transport, polling: detail.polling, delayMs: detail.delayMs, error: detail.error?.message };
        this.#post(this.#lastState);
      },
      subscribed: (channel, error) => {
        if (this.#wanted.has(channel)) this.downstream.subscribed(channel, error);
        this.#post({ t: 'subscribed', channel, error: error?.message });
      },
      gap: (channel) => {
        if (this.#wanted.has(channel)) this.downstream.gap(channel);
        this.#post({ t: 'gap', channel });
      },
      serverSubscription: (channel, subscribed, grant) => {
        this.#serverSubscription(channel, subscribed, grant);
        this.#post({ t: 'server', channel, subscribed, grant });
      },
    };
  }

  #serverSubscription(channel: string, subscribed: boolean, grant: string | undefined): void {
    if (subscribed && grant !== undefined) this.#server.set(channel, grant);
    else if (!subscribed) this.#server.delete(channel);
    this.downstream.serverSubscription(channel, subscribed, grant);
  }

  #onRelay(relay: Relay): void {
    if (this.#closed || typeof relay !== 'object' || relay === null) return;
    if (this.#link !== undefined) this.#asLeader(this.#link, relay);
    else this.#asFollower(relay);
  }

  #asLeader(link: Link, relay: Relay): void {
    switch (relay.t) {
      case 'hello':
        this.#post({ t: 'leader', from: this.#tab });
        if (this.#lastState !== undefined) this.#post(this.#lastState);
        for (const [channel, grant] of this.#server) this.#post({ t: 'server', channel, subscribed: true, grant });
        return;
      case 'want':
        this.#addInterest(relay.from, relay.channel, relay.since);
        return;
      case 'unwant':
        this.#dropInterest(relay.from, relay.channel);
        return;
      case 'bye':
        for (const channel of [...this.#interest.keys()]) this.#dropInterest(relay.from, channel);
        return;
      case 'publish':
        link.publish(relay.channel, relay.data).then(
          (reply) => this.#post({ t: 'published', to: relay.from, ref: relay.ref, reply }),
          (error: Error) => this.#post({ t: 'published', to: relay.from, ref: relay.ref, error: error.message }),
        );
        return;
      default:
        return;
    }
  }

  #asFollower(relay: Relay): void {
    switch (relay.t) {
      case 'leader': {
        // The same leader answering another tab's hello: nothing to tell it again.
        if (relay.from === this.#leader) return;
        const first = this.#leader === undefined;
        this.#leader = relay.from;
        // A new leader: tell it everything this tab needs, each channel from where this tab is.
        for (const [channel, since] of this.#wanted) this.#post({ t: 'want', from: this.#tab, channel, since: this.seenIds().get(channel) ?? since });
        if (first) for (const [ref, publish] of this.#publishes) this.#post({ t: 'publish', from: this.#tab, ref, channel: publish.channel, data: publish.data });
        else this.#abandonPublishes();
        return;
      }
      case 'deliver':
        this.downstream.deliver(relay.channel, relay.data, relay.id, relay.event === 'join' || relay.event === 'leave' || relay.event === 'count' ? relay.event : undefined);
        return;
      case 'state':
        this.downstream.state(relay.state, {
          transport: relay.transport,
          polling: relay.polling,
          delayMs: relay.delayMs,
          error: relay.error === undefined ? undefined : new Error(relay.error),
        } satisfies StateDetail);
        return;
      case 'subscribed':
        if (this.#wanted.has(relay.channel)) this.downstream.subscribed(relay.channel, relay.error === undefined ? undefined : new Error(relay.error));
        return;
      case 'server':
        this.#serverSubscription(relay.channel, relay.subscribed, relay.grant);
        break;
      case 'gap':
        if (this.#wanted.has(relay.channel)) this.downstream.gap(relay.channel);
        return;
      case 'published': {
        const publish = relay.to === this.#tab ? this.#publishes.get(relay.ref) : undefined;
        if (publish === undefined) return;
        this.#publishes.delete(relay.ref);
        if (relay.reply !== undefined) publish.resolve(relay.reply);
        else publish.reject(new PublishError(relay.error ?? 'publish failed'));
        return;
      }
      default:
        return;
    }
  }

  /**
   * Publishes handed to a leader that went away unanswered may or may not have gone out: they are
   * rejected, as over a broken connection, rather than sent twice.
   */
  #abandonPublishes(): void {
    for (const publish of this.#publishes.values()) {
      publish.reject(new PublishError(`the tab holding the connection closed before the server answered the publish to ${publish.channel}`));
    }
    this.#publishes.clear();
  }

  #addInterest(tab: string, channel: string, since: string | undefined): void {
    let tabs = this.#interest.get(channel);
    if (tabs === undefined) {
      tabs = new Set();
      this.#interest.set(channel, tabs);
    }
    tabs.add(tab);
    this.#link!.want(channel, since);
  }

  #dropInterest(tab: string, channel: string): void {
    const tabs = this.#interest.get(channel);
    if (tabs === undefined || !tabs.delete(tab) || tabs.size > 0) return;
    this.#interest.delete(channel);
    this.#link!.unwant(channel);
  }

  #post(relay: Relay): void {
    if (!this.#closed) this.#bus.postMessage(relay);
  }
}
