/**
 * @module
 * The question every REST route asks before doing anything: may this request do this on that
 * channel? The server layer answers it (publish key, tokens, channel rules).
 */
import type { IncomingMessage } from 'node:http';
import type { Principal } from '../core/access.js';
import type { SubscriptionGuard } from '../core/subscription-guard.js';

/** `manage`: what only a backend may do (drop history, sign tokens). */
export type RestAction = 'subscribe' | 'publish' | 'manage';

/** 503: the backend's decision hook could not decide (try again in a moment). */
export type RestRefusal = { ok: false; status: 401 | 403 | 503; error: string };

/**
 * What the publish hook made of a message's data: publish it (maybe replaced), or refuse it.
 */
export type DataReview = { ok: true; data: unknown } | RestRefusal;

/**
 * `principal`: the verified token the request acts with; undefined for a backend or anonymous.
 * `guard`: set when the bearer may subscribe to only some channels under the pattern asked for —
 * a subscription then checks each delivery with it; a listing of the pattern is refused.
 * `review`: set when the backend's publish hook decides (it needs the data): the publisher asks it
 * once the data is read, and publishes what it answers. Such a publisher is a client, not the backend.
 */
export type RestVerdict = { ok: true; principal: Principal | undefined; guard?: SubscriptionGuard; review?: (data: unknown) => Promise<DataReview> } | RestRefusal;

export type RestGate = (req: IncomingMessage, query: URLSearchParams, action: RestAction, channel: string) => Promise<RestVerdict>;
