/**
 * @module
 * Webhook receivers as `herald serve` takes them — each with its own event filter — from a flag,
 * a variable or a config file:
 * - text (`--webhook-url`, `HERALD_WEBHOOK_URL`, or a config file string): targets separated by
 *   commas or spaces, each a URL optionally followed by `events=` and its events, comma-separated:
 *   `https://app/presence events=user.online,user.offline, https://app/audit`;
 * - a config file list, each item such a string or a mapping `{url, events}`.
 * A target without `events=` gets `--webhook-events` (or the default events). Whatever is wrong is
 * refused naming it: an unknown event, an `events=` without a URL before it, a URL given twice…
 */
import { HeraldError } from '../core/errors.js';
import { redactUrl } from '../core/redact.js';
import { isWebhookUrl, WEBHOOK_EVENT_TYPES } from './webhooks.js';
import type { WebhookEventType, WebhookTarget } from './webhooks.js';

const EVENTS_PREFIX = 'events=';

/** Reads targets from text; throws a HeraldError naming `where` and the fault. */
export function parseWebhookTargets(text: string, where: string): WebhookTarget[] {
  const targets: { url: string; events?: WebhookEventType[] }[] = [];
  // Whether the words read last are a target's events (so a bare event word continues them).
  let inEvents = false;
  for (const word of text.split(/[\s,]+/).filter((w) => w !== '')) {
    const last = targets[targets.length - 1];
    if (word.startsWith(EVENTS_PREFIX)) {
      if (last === undefined) throw refuse(where, `"${EVENTS_PREFIX}" must follow the URL it filters, as in https://app/hook events=user.online,user.offline`);
      if (last.events !== undefined) throw refuse(where, `${redactUrl(last.url)} has "${EVENTS_PREFIX}" twice`);
      last.events = [];
      inEvents = true;
      const first = word.slice(EVENTS_PREFIX.length);
      if (first !== '') last.events.push(eventOf(first, where));
      continue;
    }
    if (isWebhookUrl(word)) {
      if (last?.events?.length === 0) throw refuse(where, `${redactUrl(last.url)} has "${EVENTS_PREFIX}" without events`);
      targets.push({ url: word });
      inEvents = false;
      continue;
    }
    if (inEvents && last !== undefined) {
      last.events!.push(eventOf(word, where));
      continue;
    }
    // A URL may carry a token: a word that could be one mistyped is not echoed.
    const shown = word.includes(':') || word.includes('@') ? `a word of ${word.length} characters that is not one` : JSON.stringify(word.slice(0, 200));
    throw refuse(where, `expected an http:// or https:// URL, got ${shown}`);
  }
  const last = targets[targets.length - 1];
  if (last?.events?.length === 0) throw refuse(where, `${redactUrl(last.url)} has "${EVENTS_PREFIX}" without events`);
  if (targets.length === 0) throw refuse(where, 'expected one or more http:// or https:// URLs');
  return checked(targets, where);
}

/** A config file's value: text as above, or a list of such texts and `{url, events}` mappings. */
export function webhookTargetsFromFile(value: unknown, where: string): WebhookTarget[] {
  if (typeof value === 'string') return parseWebhookTargets(value, where);
  if (!Array.isArray(value) || value.length === 0) throw refuse(where, 'expected a list of URLs (each with "events=…" if filtered) or of {url, events} mappings');
  const targets = value.flatMap((item, index): WebhookTarget[] => {
    const at = `${where}[${index}]`;
    if (typeof item === 'string') return parseWebhookTargets(item, at);
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw refuse(at, `expected a URL or a {url, events} mapping, got ${JSON.stringify(item)?.slice(0, 200)}`);
    const { url, events, ...rest } = item as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw refuse(at, `unknown key ${JSON.stringify(unknown[0])} (a receiver has url and events)`);
    if (typeof url !== 'string' || !isWebhookUrl(url)) throw refuse(at, `url must be an http:// or https:// URL, got ${JSON.stringify(url)?.slice(0, 200)}`);
    if (events === undefined) return [url];
    const list = typeof events === 'string' ? events.split(',').map((e) => e.trim()) : events;
    if (!Array.isArray(list) || list.length === 0) throw refuse(at, 'events must be a non-empty list of events');
    return [{ url, events: list.map((event) => eventOf(event, at)) }];
  });
  return checked(targets, where);
}

/** How `herald config --print` shows targets: URLs masked, filters as written. */
export function showWebhookTargets(targets: readonly WebhookTarget[]): string[] {
  return targets.map((target) => (typeof target === 'string' ? redactUrl(target) : `${redactUrl(target.url)}${target.events === undefined ? '' : ` ${EVENTS_PREFIX}${target.events.join(',')}`}`));
}

function checked(targets: readonly (WebhookTarget | { url: string; events?: WebhookEventType[] })[], where: string): WebhookTarget[] {
  const seen = new Set<string>();
  for (const target of targets) {
    const url = typeof target === 'string' ? target : target.url;
    // One receiver, one queue: a URL twice would get every event twice.
    if (seen.has(url)) throw refuse(where, `${redactUrl(url)} is given twice (give it once, with every event it wants)`);
    seen.add(url);
  }
  return targets.map((target) => (typeof target === 'string' || target.events === undefined ? (typeof target === 'string' ? target : target.url) : { url: target.url, events: target.events }));
}

function eventOf(word: unknown, where: string): WebhookEventType {
  if ((WEBHOOK_EVENT_TYPES as readonly unknown[]).includes(word)) return word as WebhookEventType;
  throw refuse(where, `unknown webhook event ${JSON.stringify(word)?.slice(0, 200)} (known: ${WEBHOOK_EVENT_TYPES.join(', ')})`);
}

function refuse(where: string, problem: string): HeraldError {
  return new HeraldError('HERALD_ERR_INVALID_OPTION', `${where}: ${problem}`);
}
