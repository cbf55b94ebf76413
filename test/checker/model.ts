/**
 * @module
 * The delivery checker's model and verdict: what publishers had acknowledged, what each subscriber
 * received and was told, and whether that keeps Herald's promise. Pure (no I/O, no clock), so the
 * verdict itself is unit-tested on synthetic histories (model.test.ts).
 *
 * The promise, per subscriber and channel it covers:
 * - every message whose publish was acknowledged is delivered exactly once and in order, or the
 *   subscriber was told of a gap covering it (a gap signal after the last delivery before the
 *   missing message, and before — or shortly after — the first delivery after it);
 * - nothing is delivered that was not published (a refused publish did not happen);
 * - no subscriber is left stranded: it receives what is published after the faults stop, or it
 *   was told why it stopped (and the run accepts that reason);
 * - no subscriber spins: a poll answered with a gap signal alone, again and again, is a client
 *   that will never hold (a gap is said once, then the poll waits for messages).
 */

/** `refused`: the server said it did not happen (503); `unknown`: no answer (a cut connection). */
export type PublishStatus = 'acked' | 'refused' | 'unknown';

export interface PublishRecord {
  readonly door: string;
  readonly channel: string;
  /** Unique per channel, increasing in publish order: one publisher per channel, one publish at a time. */
  readonly seq: number;
  readonly status: PublishStatus;
  readonly id?: string | undefined;
  readonly startedAt: number;
  /** How it got there, when it took more than one try (e.g. "retried after 503 ×2"). */
  readonly note?: string | undefined;
}

export type Observation =
  /** `seq` undefined: data the checker's publishers never produce. */
  | { readonly kind: 'deliver'; readonly at: number; readonly channel: string; readonly seq: number | undefined; readonly id?: string | undefined }
  /** Messages on `target` (a channel, or the subscription's pattern) may have been lost. */
  | { readonly kind: 'gap'; readonly at: number; readonly target: string; readonly note?: string }
  /** The subscriber will receive nothing more, and was told why. */
  | { readonly kind: 'stop'; readonly at: number; readonly reason: string }
  /** What the client did meanwhile (a new session, a resume): shown in a violation's history, not judged. */
  | { readonly kind: 'note'; readonly at: number; readonly text: string };

export interface SubscriberRecord {
  readonly name: string;
  readonly door: string;
  /** The channel or pattern subscribed to. */
  readonly target: string;
  /** When the server confirmed the subscription (undefined: never, or the door cannot tell). */
  readonly readyAt: number | undefined;
  readonly observations: readonly Observation[];
  /** The most answers in a row that carried gap signals and nothing else (doors that poll count them). */
  readonly gapOnlyRun?: number;
}

export interface FaultRecord {
  readonly at: number;
  readonly kind: string;
  readonly detail: string;
}

export interface History {
  readonly seed: number;
  readonly publishes: readonly PublishRecord[];
  readonly subscribers: readonly SubscriberRecord[];
  readonly faults: readonly FaultRecord[];
  /** When the last fault was undone: what is published after this must reach every subscriber. */
  readonly quietAt: number;
}

export type ViolationKind = 'loss' | 'duplicate' | 'reorder' | 'phantom' | 'stranded' | 'stopped' | 'spinning';

export interface Violation {
  readonly kind: ViolationKind;
  readonly subscriber: string;
  readonly door: string;
  readonly channel: string;
  /** The first offending sequence number (undefined for alien data or a stop). */
  readonly seq: number | undefined;
  /** When it happened: the missing message's publish, or the offending delivery. */
  readonly at: number;
  /** Acknowledged sequence numbers around `seq`. */
  readonly expected: readonly number[];
  /** What the subscriber received around it, in arrival order (`gap` marks a gap signal). */
  readonly received: readonly (number | string)[];
  readonly faults: readonly FaultRecord[];
  readonly note: string;
}

export interface VerdictOptions {
  /** A gap signal this long after the first delivery past a loss still covers it (a batch's order). */
  readonly gapLatenessMs?: number;
  /** Faults this close to a violation are shown with it. */
  readonly faultWindowMs?: number;
  /** Stop reasons the run accepts as "told why it stopped" (none, by default: no scenario bans anyone). */
  readonly acceptStop?: (reason: string) => boolean;
}

const WINDOW = 4;
/** Signals and notes in a row shown in a violation's history; the rest of a run of them is counted. */
const NOTES_SHOWN = 6;
/** Gap-only answers in a row that make a spinning client: a cursor no node honours twice in a row is a fault per answer. */
export const SPIN_LIMIT = 5;

/** Whether `target` (a channel or a pattern ending in `*` or `**`) covers `channel`. */
export function covers(target: string, channel: string): boolean {
  if (target === channel) return true;
  if (target.endsWith('/**')) return channel.startsWith(target.slice(0, -2)) && channel.length > target.length - 2;
  if (target.endsWith('/*')) {
    const prefix = target.slice(0, -1);
    return channel.startsWith(prefix) && channel.length > prefix.length && !channel.slice(prefix.length).includes('/');
  }
  return false;
}

interface Delivery {
  readonly position: number;
  readonly at: number;
  readonly seq: number;
}

export function checkHistory(history: History, options: VerdictOptions = {}): Violation[] {
  const violations: Violation[] = [];
  const byChannel = new Map<string, Map<number, PublishRecord>>();
  for (const record of history.publishes) {
    let channel = byChannel.get(record.channel);
    if (channel === undefined) byChannel.set(record.channel, (channel = new Map()));
    channel.set(record.seq, record);
  }
  for (const subscriber of history.subscribers) {
    for (const channel of byChannel.keys()) {
      if (covers(subscriber.target, channel)) violations.push(...checkChannel(history, subscriber, channel, byChannel.get(channel)!, options));
    }
    const stop = subscriber.observations.find((o) => o.kind === 'stop');
    const accepted = stop !== undefined && (options.acceptStop?.(stop.reason) ?? false);
    if (stop !== undefined && !accepted) {
      violations.push(violation(history, options, subscriber, 'stopped', subscriber.target, undefined, stop.at, [], `stopped: ${stop.reason}`));
    }
    if ((subscriber.gapOnlyRun ?? 0) >= SPIN_LIMIT) {
      const note = `spinning: ${subscriber.gapOnlyRun} answers in a row carried a gap signal and nothing else (a gap must be said once, then the poll held)`;
      violations.push(violation(history, options, subscriber, 'spinning', subscriber.target, undefined, subscriber.observations.find((o) => o.kind === 'gap')?.at ?? 0, [], note));
    }
    const owed = history.publishes.find((p) => p.status === 'acked' && p.startedAt >= history.quietAt && covers(subscriber.target, p.channel));
    const heard = subscriber.observations.some((o) => o.kind === 'deliver' && o.at >= history.quietAt);
    if (owed !== undefined && !heard && !accepted) {
      const note = `received nothing published after the faults stopped (first owed: ${owed.channel} seq ${owed.seq})${subscriber.readyAt === undefined ? '; never confirmed its subscription' : ''}`;
      violations.push(violation(history, options, subscriber, 'stranded', owed.channel, owed.seq, owed.startedAt, receivedAround(subscriber.observations, owed.channel, subscriber.observations.length), note));
    }
  }
  return violations.sort((a, b) => a.at - b.at);
}

function checkChannel(history: History, subscriber: SubscriberRecord, channel: string, published: Map<number, PublishRecord>, options: VerdictOptions): Violation[] {
  const found: Violation[] = [];
  const observations = subscriber.observations;
  const deliveries: Delivery[] = [];
  const seen = new Set<number>();
  let newest = -Infinity;
  observations.forEach((o, position) => {
    if (o.kind !== 'deliver' || o.channel !== channel) return;
    const record = o.seq === undefined ? undefined : published.get(o.seq);
    if (o.seq === undefined || record === undefined || record.status === 'refused') {
      const why = o.seq === undefined ? 'data no publisher sent' : record === undefined ? 'a sequence number never published' : 'a publish the server refused';
      found.push(violation(history, options, subscriber, 'phantom', channel, o.seq, o.at, receivedAround(observations, channel, position), `delivered ${why}`));
      return;
    }
    if (seen.has(o.seq)) {
      found.push(violation(history, options, subscriber, 'duplicate', channel, o.seq, o.at, receivedAround(observations, channel, position), `seq ${o.seq} delivered again`));
      return;
    }
    if (o.seq < newest) {
      found.push(violation(history, options, subscriber, 'reorder', channel, o.seq, o.at, receivedAround(observations, channel, position), `seq ${o.seq} after seq ${newest}`));
    }
    seen.add(o.seq);
    newest = Math.max(newest, o.seq);
    deliveries.push({ position, at: o.at, seq: o.seq });
  });

  const stop = observations.findIndex((o) => o.kind === 'stop' && (options.acceptStop?.(o.reason) ?? false));
  const firstSeq = deliveries.length > 0 ? deliveries[0]!.seq : Infinity;
  const readyAt = subscriber.readyAt ?? Infinity;
  const required = [...published.values()]
    .filter((p) => p.status === 'acked' && (p.startedAt >= readyAt || p.seq > firstSeq))
    .sort((a, b) => a.seq - b.seq);
  const lateness = options.gapLatenessMs ?? 500;
  for (const record of required) {
    if (seen.has(record.seq)) continue;
    const next = deliveries.find((d) => d.seq > record.seq);
    const previous = next === undefined ? deliveries.at(-1) : [...deliveries].reverse().find((d) => d.position < next.position);
    const after = previous?.position ?? -1;
    const told = observations.some(
      (o, position) =>
        position > after &&
        // A gap told before the message was even published is not about it (on a channel of one
        // message, the only bound there is).
        ((o.kind === 'gap' && covers(o.target, channel) && o.at >= record.startedAt && (next === undefined || position < next.position || o.at <= next.at + lateness)) ||
          (o.kind === 'stop' && position === stop)),
    );
    if (told) continue;
    const position = next?.position ?? observations.length;
    const acked = `acked${record.id === undefined ? '' : ` as ${record.id}`} by ${record.door}${record.note === undefined ? '' : `, ${record.note}`}`;
    const note = `seq ${record.seq} (${acked}) never delivered${next === undefined ? ', nor anything after it' : ''}; no gap signal`;
    found.push(violation(history, options, subscriber, 'loss', channel, record.seq, record.startedAt, receivedAround(observations, channel, position), note));
    // One loss per channel tells the story; the rest of the run follows from it.
    break;
  }
  return found;
}

function receivedAround(observations: readonly Observation[], channel: string, position: number): (number | string)[] {
  const relevant: { position: number; label: number | string }[] = [];
  observations.forEach((o, index) => {
    if (o.kind === 'deliver' && o.channel === channel) relevant.push({ position: index, label: o.seq ?? '?' });
    else if (o.kind === 'gap' && covers(o.target, channel)) relevant.push({ position: index, label: 'gap' });
    else if (o.kind === 'stop') relevant.push({ position: index, label: `stop(${o.reason})` });
    else if (o.kind === 'note') relevant.push({ position: index, label: `(${o.text})` });
  });
  const at = relevant.findIndex((r) => r.position >= position);
  const center = at < 0 ? relevant.length : at;
  // Notes do not count towards the window: the deliveries around the violation do. But a client
  // in a loop writes notes without end: past a few in a row, the rest are counted, not shown.
  const window: (number | string)[] = [];
  let before = 0;
  let notes = 0;
  let hidden = 0;
  for (let i = center - 1; i >= 0 && before < WINDOW; i--) {
    const label = relevant[i]!.label;
    if (typeof label === 'number') before++;
    notes = typeof label === 'number' ? 0 : notes + 1;
    if (notes > NOTES_SHOWN) hidden++;
    else {
      if (hidden > 0) window.unshift(`(… ${hidden} more)`);
      hidden = 0;
      window.unshift(label);
    }
  }
  if (hidden > 0) window.unshift(`(… ${hidden} more)`);
  let after = 0;
  notes = hidden = 0;
  for (let i = center; i < relevant.length && after <= WINDOW; i++) {
    const label = relevant[i]!.label;
    if (typeof label === 'number') after++;
    notes = typeof label === 'number' ? 0 : notes + 1;
    if (notes > NOTES_SHOWN) hidden++;
    else {
      if (hidden > 0) window.push(`(… ${hidden} more)`);
      hidden = 0;
      window.push(label);
    }
  }
  if (hidden > 0) window.push(`(… ${hidden} more)`);
  return window;
}

function violation(
  history: History,
  options: VerdictOptions,
  subscriber: SubscriberRecord,
  kind: ViolationKind,
  channel: string,
  seq: number | undefined,
  at: number,
  received: (number | string)[],
  note: string,
): Violation {
  const acked = history.publishes.filter((p) => p.channel === channel && p.status === 'acked').map((p) => p.seq).sort((a, b) => a - b);
  const index = seq === undefined ? -1 : acked.findIndex((s) => s >= seq);
  const expected = index < 0 ? [] : acked.slice(Math.max(0, index - WINDOW), index + WINDOW + 1);
  const window = options.faultWindowMs ?? 3000;
  const faults = history.faults.filter((f) => Math.abs(f.at - at) <= window);
  return { kind, subscriber: subscriber.name, door: subscriber.door, channel, seq, at, expected, received, faults, note };
}

/** The seed and the minimal history of each violation: enough to read what went wrong and replay it. */
export function describeViolations(history: History, violations: readonly Violation[], limit = 8): string {
  const start = Math.min(...history.publishes.map((p) => p.startedAt), ...history.faults.map((f) => f.at));
  const t = (at: number) => `+${((at - start) / 1000).toFixed(2)}s`;
  const lines = [`delivery checker: ${violations.length} violation(s); replay with seed ${history.seed}`];
  for (const v of violations.slice(0, limit)) {
    lines.push(`- ${v.kind} at ${t(v.at)}: subscriber ${v.subscriber} (${v.door}), channel ${v.channel}: ${v.note}`);
    lines.push(`    expected (acked) around it: [${v.expected.join(', ')}]`);
    lines.push(`    received around it:         [${v.received.join(', ')}]`);
    lines.push(`    faults near it: ${v.faults.length === 0 ? 'none' : v.faults.map((f) => `${f.kind} ${f.detail} at ${t(f.at)}`).join('; ')}`);
  }
  if (violations.length > limit) lines.push(`  … and ${violations.length - limit} more`);
  return lines.join('\n');
}
