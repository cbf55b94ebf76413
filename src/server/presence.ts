/**
 * @module
 * Presence, wired: join/leave events for the channels whose rules opt in, who is online (users,
 * when webhooks or `herald.on` want it), `herald.on(…)`, webhooks (channels occupied/vacated,
 * users online/offline, and subscriptions and publishes when a receiver names them), and the
 * Bayeux service `/service/presence` through which a client (the Herald client's `presence()`,
 * CometD's `remoteCall`, a Faye publish) asks who is on a channel — the same answer as
 * `GET /presence/{channel}`.
 */
import type { ServiceHandler } from '../bayeux/services.js';
import type { ChannelAccess } from '../core/access.js';
import { parseChannel } from '../core/channel.js';
import type { Clock } from '../core/clock.js';
import type { Engine } from '../core/engine.js';
import type { Hub } from '../core/hub.js';
import { presenceListing } from '../core/presence.js';
import { PresenceEvents } from '../core/presence-events.js';
import type { Publisher } from '../core/publisher.js';
import type { SessionStore } from '../core/session-store.js';
import { UserPresence } from '../core/user-presence.js';
import { heraldEvents } from './herald-events.js';
import type { Logger } from './logger.js';
import type { Settings } from './options.js';
import { MAX_PRESENCE_LIMIT } from '../rest/presence.js';
import { Webhooks } from './webhooks.js';
import type { WebhookCounters, WebhookOptions } from './webhooks.js';

/** The service channel clients ask presence on. */
export const PRESENCE_SERVICE = '/service/presence';

/** The grace window when none is set: a little above how long a silent session lives. */
export const GRACE_BEYOND_MAX_INTERVAL_MS = 5_000;

export interface PresenceParts {
  readonly engine: Engine;
  readonly hub: Hub;
  readonly sessions: SessionStore;
  readonly clock: Clock;
  readonly access: ChannelAccess;
  readonly config: Settings;
  readonly logger: Logger;
  readonly webhookCounters: WebhookCounters;
  readonly publisher: Publisher;
}

export function wirePresence({ engine, hub, sessions, clock, access, config, logger, webhookCounters, publisher }: PresenceParts) {
  const graceMs = config.presenceGraceMs > 0 ? config.presenceGraceMs : config.intervalMs + config.maxIntervalMs + GRACE_BEYOND_MAX_INTERVAL_MS;
  // No rule opts in: nothing to follow, no timer.
  const presenceEvents = access.hasPresenceEvents
    ? new PresenceEvents(engine, hub, clock, { graceMs, maxMembers: config.presenceMaxMembers, sweepMs: config.presenceSweepMs, eventsFor: (channel) => access.presenceEvents(channel) }, (error, context) =>
        logger.warn('presence', { context, error: (error as Error).message ?? String(error) }),
      )
    : undefined;
  // Who is online runs only once something wants it (webhooks, herald.on): else no session pays.
  let users: UserPresence | undefined;
  const trackUsers = (): UserPresence =>
    (users ??= new UserPresence(engine, sessions, clock, { graceMs, sweepMs: config.presenceSweepMs }, (error, context) =>
      logger.warn('user presence', { context, error: (error as Error).message ?? String(error) }),
    ));
  const on = heraldEvents({ sessions, hub, presenceEvents, trackUsers, onError: (error, event) => logger.error('herald.on listener failed', { event, error }) });
  const webhooks = config.webhooks.length === 0 ? undefined : new Webhooks(engine, clock, webhookOptions(config, graceMs), logger, webhookCounters);
  if (webhooks !== undefined) {
    const channelEvents = webhooks.wants('channel.occupied') || webhooks.wants('channel.vacated');
    if (channelEvents && presenceEvents === undefined) logger.warn('webhooks want channel events, but no channel rule says "presence": "events": no channel will be occupied or vacated');
    presenceEvents?.onTransition((transition) => webhooks.transition(transition));
    if (webhooks.wants('user.online') || webhooks.wants('user.offline')) trackUsers().onTransition(({ kind, user, at }) => webhooks.emit({ type: `user.${kind}`, user, at }));
    if (webhooks.wants('subscribe') || webhooks.wants('unsubscribe')) {
      hub.onSubscription((session, channel, subscribed) => {
        const user = session.principal?.subject;
        webhooks.emit({ type: subscribed ? 'subscribe' : 'unsubscribe', channel, session: session.publicId, ...(user === undefined || user === '' ? {} : { user }) });
      });
    }
    // The message's channel and id, not its data: the backend has it already or reads history.
    if (webhooks.wants('publish')) publisher.onPublished((message) => webhooks.emit({ type: 'publish', channel: message.channel, messageId: message.id }));
  }
  /** Stops following; the webhook sender gives its lease up (its events stay for the next node). */
  const close = async () => {
    presenceEvents?.close();
    users?.close();
    await webhooks?.close();
  };
  return { presenceEvents, webhooks, on, close, service: presenceService(engine, sessions, access) };
}

function webhookOptions(config: Settings, graceMs: number): WebhookOptions {
  return {
    targets: config.webhooks,
    events: config.webhookEvents,
    secret: config.webhookSecret!,
    maxPending: config.webhookMaxPending,
    attempts: config.webhookAttempts,
    retryMs: config.webhookRetryMs,
    batchWaitMs: config.webhookBatchWaitMs,
    // Two transitions of one kind on a channel are a grace window apart at least (webhooks.ts).
    claimMs: Math.max(1, graceMs / 2),
  };
}

/**
 * `/service/presence` with data `{"channel": "/chat/a", "count"?: true, "limit"?: n}`: answers the
 * listing, or `{"error": …}` naming the problem. The asker needs the right to subscribe to every
 * channel the name covers — or to be subscribed to it already.
 */
function presenceService(engine: Engine, sessions: SessionStore, access: ChannelAccess): ServiceHandler {
  return async ({ data, clientId }) => {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return { error: 'ask with {"channel": "/some/channel"}' };
    const { channel, count, limit = 1000 } = data as Record<string, unknown>;
    const parsed = typeof channel === 'string' ? parseChannel(channel) : undefined;
    if (parsed === undefined || parsed.kind !== 'broadcast') return { error: `channel must name a channel or pattern (not /meta or /service), got ${JSON.stringify(channel)?.slice(0, 200)}` };
    if (count !== undefined && typeof count !== 'boolean') return { error: 'count must be true or false' };
    if (!Number.isInteger(limit) || (limit as number) < 0 || (limit as number) > MAX_PRESENCE_LIMIT) return { error: `limit must be an integer from 0 to ${MAX_PRESENCE_LIMIT}` };
    const session = sessions.get(clientId);
    if (session === undefined) return { error: 'presence is asked from a session (handshake first)' };
    if (!session.subscriptions.has(parsed.name) && !access.allows(session.principal, 'subscribe', parsed.name)) return { error: `not allowed to see who is on ${parsed.name}` };
    return presenceListing(parsed.name, await engine.presence(parsed.name), count === true ? undefined : (limit as number));
  };
}
