/**
 * @module
 * The Bayeux front door: takes one request's messages, runs each through validation, the incoming
 * extensions and its handler, and returns the reply body — or a held connect that produces it later.
 *
 * Meta messages are routed by exact channel equality, after the channel passed the grammar, so no
 * spelling of a name can reach a handler it does not name (Faye's 2020 authentication bypass).
 */
import { OPEN_ACCESS } from '../core/access.js';
import type { AccessPolicy } from '../core/access.js';
import { parseChannel } from '../core/channel.js';
import { systemClock } from '../core/clock.js';
import type { Clock } from '../core/clock.js';
import type { ControlPlane } from '../core/control-plane.js';
import type { Engine } from '../core/engine.js';
import { isEngineUnavailable } from '../core/errors.js';
import { credentialHeaders, NO_HOOKS } from '../core/hooks.js';
import type { DecisionHooks } from '../core/hooks.js';
import type { Hub } from '../core/hub.js';
import type { AddressRates } from '../core/limits.js';
import type { BatchOutcome, HeldReply, PendingReply, RequestContext, Responder, SessionFinder } from '../core/protocol.js';
import type { ResumeReason, Session, Waiter } from '../core/session.js';
import type { SessionStore } from '../core/session-store.js';
import { ENGINE_RETRY_ADVICE } from './advice.js';
import { BrowserHolds } from './browser-holds.js';
import { completeHeldConnect, handleConnect, occupiesBrowserConnection } from './connect.js';
import { handleDisconnect } from './disconnect.js';
import { BayeuxErrors } from './errors.js';
import type { Extension, ExtensionContext } from './extensions.js';
import { ExtensionPipeline } from './extensions.js';
import { asksPiggyback, canPiggyback } from './ext/piggyback.js';
import { withPendingTimesync, withTimesync } from './ext/timesync.js';
import type { PendingTimesync } from './ext/timesync.js';
import { Batch, sessionFor } from './handler.js';
import type { BayeuxDeps, BayeuxOptions, ConnectToHold, HeldConnect, MetaHandler } from './handler.js';
import { handleHandshake } from './handshake.js';
import { encodeBody, formatFor, isObject, replyTo } from './message.js';
import type { BayeuxMessage, BayeuxReply } from './message.js';
import { handlePublish } from './publish.js';
import type { Publisher } from '../core/publisher.js';
import type { ServiceHandler } from './services.js';
import { ServiceRegistry } from './services.js';
import { ServerSubscriptions } from './server-subscriptions.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';
import { subscriptionEnded, TokenSubscriptions } from './token-subscriptions.js';

const META_HANDLERS: ReadonlyMap<string, MetaHandler> = new Map([
  ['/meta/handshake', handleHandshake],
  ['/meta/connect', handleConnect],
  ['/meta/subscribe', handleSubscribe],
  ['/meta/unsubscribe', handleUnsubscribe],
  ['/meta/disconnect', handleDisconnect],
]);

export const BAYEUX_DEFAULTS: BayeuxOptions = {
  connectionTypes: ['long-polling'],
  timeoutMs: 30_000,
  intervalMs: 0,
  maxIntervalMs: 10_000,
  maxSessionsPerBrowser: 1,
  multiSessionIntervalMs: 2_000,
  allowPublishWithoutSession: true,
  maxSubscriptions: 1024,
};

export interface BayeuxServerParts {
  readonly sessions: SessionStore;
  readonly hub: Hub;
  readonly engine: Engine;
  readonly publisher: Publisher;
  /** Who may subscribe and publish where (default: everyone, everywhere; no tokens). */
  readonly access?: AccessPolicy;
  /** True while the server drains (default: never). */
  readonly isDraining?: () => boolean;
  /** Time for expiring token-bound subscriptions (default: the system clock). */
  readonly clock?: Clock | undefined;
  /** The rate of publishes without a session, per address (default: unlimited). */
  readonly addressRates?: AddressRates;
  /** The control plane, whose server subscriptions this server carries out on its sessions (default: none). */
  readonly control?: ControlPlane;
  /** The application's backend decision hooks (default: none). */
  readonly hooks?: DecisionHooks | undefined;
}

export class BayeuxServer {
  readonly #deps: BayeuxDeps;
  readonly #extensions = new ExtensionPipeline();
  readonly #services = new ServiceRegistry();

  constructor(parts: BayeuxServerParts, options: Partial<BayeuxOptions> = {}) {
    const { sessions, hub } = parts;
    const clock = parts.clock ?? systemClock;
    const tokenSubscriptions = new TokenSubscriptions(clock, (session, pattern) => {
      // Delivery stops at once (the index forgets the session synchronously); an engine that fails
      // to drop its interest costs only traffic to this node.
      hub.unsubscribe(session, pattern).catch(() => undefined);
      if (!session.enqueue(subscriptionEnded(pattern, 'token_expired', clock.now()))) sessions.close(session, 'queue_full');
    });
    sessions.onClosed((session) => tokenSubscriptions.forget(session));
    const { control, engine } = parts;
    const serverSubscriptions = control === undefined ? undefined : new ServerSubscriptions({ hub, engine, sessions, tokenSubscriptions, grants: control.grants, clock });
    if (serverSubscriptions !== undefined) control?.serveSubscriptions(serverSubscriptions);
    this.#deps = {
      ...parts,
      serverSubscriptions,
      access: parts.access ?? OPEN_ACCESS,
      hooks: parts.hooks ?? NO_HOOKS,
      isDraining: parts.isDraining ?? (() => false),
      options: { ...BAYEUX_DEFAULTS, ...options },
      browsers: new BrowserHolds(),
      services: this.#services,
      tokenSubscriptions,
    };
  }

  get options(): BayeuxOptions {
    return this.#deps.options;
  }

  use(extension: Extension): void {
    this.#extensions.use(extension);
  }

  service(pattern: string, handler: ServiceHandler): void {
    this.#services.add(pattern, handler);
  }

  /**
   * What of a connection's request headers the messages it carries later may read, for a
   * connection open for long (a WebSocket's upgrade; asked once, as it opens): every header while
   * an extension may read them, those the hooks read while a hook is configured, else none. An
   * extension added later sees no headers of the connections already open.
   */
  readonly keptHeaders = (headers: NonNullable<RequestContext['headers']>): RequestContext['headers'] => {
    if (!this.#extensions.isEmpty) return headers;
    const hooks = this.#deps.hooks;
    return hooks.has('connect') || hooks.has('subscribe') || hooks.has('publish') ? credentialHeaders(headers) : undefined;
  };

  /**
   * Handles one request's messages. Never throws for bad input: every problem is a reply. The
   * outcome comes in the same turn when nothing on the way waits (a handshake, a connect, with no
   * asynchronous extension): a promise per request, and a turn of the microtask queue, cost a
   * reconnect storm by the ten thousand.
   */
  readonly handleBatch = (messages: readonly unknown[], context: RequestContext): BatchOutcome | Promise<BatchOutcome> => {
    const run: BatchRun = {
      messages,
      batch: new Batch(context, messages.length),
      receivedAt: Date.now(),
      handshakeAt: messages.findIndex((m) => isObject(m) && m.channel === '/meta/handshake'),
      replies: [],
    };
    return this.#handleFrom(0, run);
  };

  /** Handles `run.messages[from…]` in order: in this turn until one of them waits, then the rest after it. */
  #handleFrom(from: number, run: BatchRun): BatchOutcome | Promise<BatchOutcome> {
    for (let i = from; i < run.messages.length; i++) {
      const waiting = this.#handleAt(i, run);
      if (waiting !== undefined) return waiting.then(() => this.#handleFrom(i + 1, run));
    }
    return this.#outcome(run);
  }

  /** Handles message `i`, adding its replies; a promise when it has to wait for them. */
  #handleAt(i: number, run: BatchRun): Promise<void> | undefined {
    const message = run.messages[i];
    if (run.handshakeAt >= 0 && i !== run.handshakeAt) {
      // The spec says to ignore them; a reply naming the problem is kinder to whoever sent them.
      const rejected: BayeuxReply = isObject(message) && typeof message.channel === 'string' ? replyTo(message.channel, message) : { channel: '/meta/unknown' };
      run.replies.push({ ...rejected, successful: false, error: BayeuxErrors.handshakeNotAlone() });
      return undefined;
    }
    const handled = this.#handleOne(message, run.batch);
    if (handled instanceof Promise) return handled.catch((error: unknown) => engineFailure(message, error)).then((replies) => this.#addReplies(replies, 0, message, run));
    return this.#addReplies(handled, 0, message, run);
  }

  /** Passes `replies[from…]` (to `message`) through the outgoing extensions, in order, into the body. */
  #addReplies(replies: readonly BayeuxReply[], from: number, message: unknown, run: BatchRun): Promise<void> | undefined {
    for (let k = from; k < replies.length; k++) {
      let reply = replies[k]!;
      if (isObject(message) && reply.channel === message.channel) reply = withTimesync(reply, message, run.receivedAt, Date.now());
      const extended = this.#extensions.outgoing(reply, () => this.#extensionContext(run.batch.context, reply));
      if (extended instanceof Promise) {
        return extended.then((out) => {
          if (out !== null) run.replies.push(out as BayeuxReply);
          return this.#addReplies(replies, k + 1, message, run);
        });
      }
      run.replies.push(extended as BayeuxReply);
    }
    return undefined;
  }

  #outcome({ batch, replies }: BatchRun): BatchOutcome {
    const { held, session, newBrowserId, context } = batch;
    if (held !== undefined) return { body: '', pending: this.#pending(held, batch), session, newBrowserId };
    // Decided now, as the body is made (in the same turn): a connect that arrived while the batch
    // was handled is held, and what is queued is its to carry.
    if (batch.piggybackFor !== undefined && batch.deliverFrom === undefined && (batch.taken === undefined || batch.taken.length === 0)) batch.deliverFrom = this.#piggybacking(batch.piggybackFor, context);
    return { body: encodeBody(replies, batch.takeDeliveries(), formatFor(batch.deliverFrom ?? session)), session, newBrowserId };
  }

  /**
   * What is queued for the session `clientId` names, taken now as a JSON array of deliveries for
   * an application's own reply (`herald.piggyback`), if the request may speak for it and it may
   * have them now (ext/piggyback.ts); undefined otherwise, or when nothing is queued.
   */
  readonly piggyback = (clientId: unknown, context: RequestContext): { json: string; count: number } | undefined => {
    const session = this.#piggybacking(clientId, context);
    const deliveries = session?.drain() ?? [];
    return deliveries.length === 0 ? undefined : { json: encodeBody([], deliveries, formatFor(session)), count: deliveries.length };
  };

  /** The session whose deliveries a reply may carry, as asked for `clientId`, if any. */
  #piggybacking(clientId: unknown, context: RequestContext): Session | undefined {
    const session = sessionFor(clientId, context, this.#deps);
    if (session === undefined || !canPiggyback(session)) return undefined;
    session.touch();
    return session;
  }

  /** The session a push connection names, if this request may use it (same rules as a clientId in a message). */
  readonly findSession: SessionFinder = (clientId, context) => sessionFor(clientId, context, this.#deps);

  #handleOne(raw: unknown, batch: Batch): BayeuxReply[] | Promise<BayeuxReply[]> {
    if (!isObject(raw)) return [{ channel: '/meta/unknown', successful: false, error: BayeuxErrors.notAnObject() }];
    // The client's word, before any extension rewrites the message. A handshake's offer is another matter (handshake.ts).
    if (batch.piggybackFor === undefined && raw.channel !== '/meta/handshake' && raw.clientId !== undefined && asksPiggyback(raw)) batch.piggybackFor = raw.clientId;
    const invalid = checkEnvelope(raw);
    if (invalid !== undefined) return [invalid];
    const message = this.#extensions.incoming(raw, () => this.#extensionContext(batch.context, raw));
    if (message instanceof Promise) return message.then((extended) => this.#route(raw, extended, batch));
    return this.#route(raw, message, batch);
  }

  /** Routes a message that passed the incoming extensions (`null`: one of them deleted it). */
  #route(raw: BayeuxMessage, message: BayeuxMessage | null, batch: Batch): BayeuxReply[] | Promise<BayeuxReply[]> {
    if (message === null) return [{ ...replyTo(String(raw.channel), raw), successful: false, error: BayeuxErrors.messageDeleted() }];
    if (message.error !== undefined) {
      // Set by an extension (or sent by the client, if none ran): only a string is an error to pass on.
      const error = typeof message.error === 'string' ? message.error : BayeuxErrors.badRequest('error must be a string');
      return [{ ...replyTo(typeof message.channel === 'string' ? message.channel : String(raw.channel), message), successful: false, error }];
    }
    // An extension may have rewritten the message: check it again.
    const invalidAfter = checkEnvelope(message);
    if (invalidAfter !== undefined) return [invalidAfter];

    const channel = parseChannel(message.channel)!;
    const meta = META_HANDLERS.get(channel.name);
    if (meta !== undefined) return meta(message, batch, this.#deps);
    return handlePublish(message, channel, batch, this.#deps);
  }

  #pending(held: ConnectToHold, batch: Batch): PendingReply {
    return {
      wait: (responder) => {
        const waiter = new HeldConnectWaiter(this, held, batch.context, responder);
        // Hold first: the connect this one replaces releases its browser slot as it resumes.
        held.session.hold(waiter, held.timeoutMs);
        // Not held when its session closed meanwhile: answered already.
        if (!held.session.isHeld) return undefined;
        if (waiter.browserId !== undefined) this.#deps.browsers.add(waiter.browserId, held.session);
        return waiter;
      },
    };
  }

  /** @internal Frees a held connect's browser slot (HeldConnectWaiter). */
  releaseBrowser(browserId: string, session: Session): void {
    this.#deps.browsers.remove(browserId, session);
  }

  /** @internal Answers a held connect once it resumes (HeldConnectWaiter). */
  completeHeld(held: HeldConnectWaiter, reason: ResumeReason, context: RequestContext, responder: Responder): void {
    const completed = completeHeldConnect(held, reason, this.#deps);
    const reply = withPendingTimesync(completed.reply, held.timesync, Date.now());
    const deliveries = completed.deliveries;
    const out = this.#extensions.outgoing(reply, () => this.#extensionContext(context, reply));
    const send = (final: BayeuxMessage | null) => responder.respond(encodeBody(final === null ? [] : [final], deliveries, formatFor(held.session)), held);
    // Answer in this tick unless an extension is asynchronous: held connects wake by the thousand.
    if (out instanceof Promise) void out.then(send);
    else send(out);
  }

  /** Field by field: a context may be an object with more (a WebSocket's is its socket), or getters. */
  #extensionContext(context: RequestContext, message: BayeuxMessage): ExtensionContext {
    const clientId = typeof message.clientId === 'string' ? message.clientId : undefined;
    const { connectionType, browserId, simpleRequest, canSetCookie, remoteAddress, token, tokenRefused, headers, stream } = context;
    return { connectionType, browserId, simpleRequest, canSetCookie, remoteAddress, token, tokenRefused, headers, stream, clientId };
  }
}

/** The checks every message passes before anything else sees it. */
function checkEnvelope(message: BayeuxMessage): BayeuxReply | undefined {
  const { channel } = message;
  if (channel === undefined) return { ...replyTo('/meta/unknown', message), successful: false, error: BayeuxErrors.missing('channel') };
  if (typeof channel !== 'string') {
    return { ...replyTo('/meta/unknown', message), successful: false, error: BayeuxErrors.badRequest('channel must be a string') };
  }
  if (parseChannel(channel) === undefined) {
    const echo = channel.length <= 1024 ? channel : '/meta/unknown';
    return { ...replyTo(echo, message), successful: false, error: BayeuxErrors.invalidChannel(channel) };
  }
  if (message.id !== undefined && replyTo(channel, message).id === undefined) {
    return { channel, successful: false, error: BayeuxErrors.invalidId() };
  }
  return undefined;
}

/** One request's messages on their way through handleBatch. */
interface BatchRun {
  readonly messages: readonly unknown[];
  readonly batch: Batch;
  readonly receivedAt: number;
  /** Where the request's handshake is (-1: none): a handshake must come alone. */
  readonly handshakeAt: number;
  readonly replies: BayeuxReply[];
}

/**
 * The reply to a message whose handling needed an engine that is out of reach: the client may
 * retry in a moment (`504`: the engine may have done it — a publish retried may be stored twice).
 * Anything else is a bug, and propagates.
 */
function engineFailure(message: unknown, error: unknown): BayeuxReply[] {
  if (!isEngineUnavailable(error)) throw error;
  const channel = isObject(message) && typeof message.channel === 'string' ? message.channel : '/meta/unknown';
  const request = isObject(message) ? message : {};
  const said = error.outcomeUnknown ? BayeuxErrors.engineNoAnswer() : BayeuxErrors.engineUnavailable();
  return [{ ...replyTo(channel, request as BayeuxMessage), successful: false, error: said, advice: ENGINE_RETRY_ADVICE }];
}

/**
 * A held connect, waiting in its session: the one object a hold makes (what the reply needs, and
 * who answers it), with its methods, where closures (and their contexts) or an object per part
 * would cost several times as much, by the ten thousand.
 */
class HeldConnectWaiter implements Waiter, HeldReply, HeldConnect {
  readonly session: Session;
  readonly id: string | number | undefined;
  readonly timesync: PendingTimesync | undefined;
  /** The browser whose connection slot the hold takes (HTTP long-polls only). */
  readonly browserId: string | undefined;

  constructor(
    private readonly server: BayeuxServer,
    held: ConnectToHold,
    /** The request's context (not its batch, which the hold would keep for nothing else), for outgoing extensions. */
    private readonly context: RequestContext,
    private readonly responder: Responder,
  ) {
    this.session = held.session;
    this.id = held.id;
    this.timesync = held.timesync;
    this.browserId = occupiesBrowserConnection(context) ? held.session.browserId : undefined;
  }

  resume(reason: ResumeReason): void {
    this.#release();
    this.server.completeHeld(this, reason, this.context, this.responder);
  }

  cancel(): void {
    this.#release();
    this.session.cancelHold(this);
  }

  answerNow(): void {
    // Still the session's hold: then it is answered here, once.
    if (this.session.cancelHold(this)) this.resume('timeout');
  }

  #release(): void {
    if (this.browserId !== undefined) this.server.releaseBrowser(this.browserId, this.session);
  }
}
