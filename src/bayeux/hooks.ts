/**
 * @module
 * Asking the application's backend (core/hooks.ts) from a Bayeux message: what the backend is
 * told (the message's `ext.auth`, the request's `Authorization` header and — on a request no
 * other site can make — its cookies, the transport, the address), and how its refusals read:
 *
 *   403:<the backend's reason>:hook_denied         — do not retry as is
 *   503:<what went wrong>:hook_unavailable          — with advice to retry in a second
 */
import type { Action } from '../core/access.js';
import { hookCredentials } from '../core/hooks.js';
import type { HookDecision, HookKind, HookRequest } from '../core/hooks.js';
import type { Session } from '../core/session.js';
import { ENGINE_RETRY_ADVICE, HANDSHAKE_ADVICE, NONE_ADVICE } from './advice.js';
import { BayeuxErrors } from './errors.js';
import type { Batch, BayeuxDeps } from './handler.js';
import { isObject } from './message.js';
import type { Advice, BayeuxMessage } from './message.js';

export type Refusal = { readonly error: string; readonly advice?: Advice };

/** Whether the backend decides `action` on `channel`: the rules leave it to a hook that is configured. */
export function hookDecides(deps: BayeuxDeps, action: Action, channel: string): boolean {
  return deps.hooks.has(action) && deps.access.hooked(action, channel);
}

/** Asks the backend about `message`, as `session` (if any) acting as `sub` (if known). */
export function askHook(
  deps: BayeuxDeps,
  kind: HookKind,
  message: BayeuxMessage,
  batch: Batch,
  about: { channel?: string; data?: unknown; sub?: string | undefined; session?: Session | undefined },
): Promise<HookDecision> {
  const { context } = batch;
  const auth = isObject(message.ext) ? message.ext.auth : undefined;
  const request: HookRequest = {
    credentials: hookCredentials(context.headers, auth),
    transport: context.connectionType,
    address: context.remoteAddress,
    ...(about.channel === undefined ? {} : { channel: about.channel }),
    ...(kind === 'publish' ? { data: about.data } : {}),
    ...(about.sub === undefined ? {} : { sub: about.sub }),
    ...(about.session === undefined ? {} : { session: about.session.publicId }),
  };
  return deps.hooks.ask(kind, request);
}

/** How a refusal reads in the reply; a handshake retries by handshaking again. */
export function hookRefusal(decision: HookDecision & { allow: false }, kind: HookKind): Refusal {
  // A refused handshake would be refused again: the client stops (as for a forged token).
  if (!decision.unavailable) return kind === 'connect' ? { error: BayeuxErrors.hookDenied(decision.reason), advice: NONE_ADVICE } : { error: BayeuxErrors.hookDenied(decision.reason) };
  const advice = kind === 'connect' ? { ...HANDSHAKE_ADVICE, interval: 1000 } : ENGINE_RETRY_ADVICE;
  return { error: BayeuxErrors.hookUnavailable(decision.reason), advice };
}
