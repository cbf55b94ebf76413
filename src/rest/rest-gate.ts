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

/**
 * `principal`: the verified token the request acts with; undefined for a backend or anonymous.
 * `guard`: set when the bearer may subscribe to only some channels under the pattern asked for —
 * a subscription then checks each delivery with it; a listing of the pattern is refused.
 */
export type RestVerdict = { ok: true; principal: Principal | undefined; guard?: SubscriptionGuard } | { ok: false; status: 401 | 403; error: string };

export type RestGate = (req: IncomingMessage, query: URLSearchParams, action: RestAction, channel: string) => Promise<RestVerdict>;
