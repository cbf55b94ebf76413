/**
 * @module
 * Who is here: a member of a channel is a user — a token's `sub`, or for an anonymous session its
 * public id — with the `info` its token (or a decision hook) gave, and as many connections as the
 * user has sessions subscribed to the channel, on any node. The engine keeps one entry per
 * session (so each session joins and leaves on its own); members are those entries grouped by user.
 */
import type { Principal } from './access.js';
import type { PresenceEntry, PresenceJoin } from './engine.js';

/**
 * The largest `info` shown, in bytes of JSON: a token claim (or hook answer) travels in every
 * presence listing and join event, so a bulky one is left out (the member is shown without it).
 */
export const MAX_PRESENCE_INFO_BYTES = 1024;

/** One user subscribed to a channel, with every session it is subscribed with. */
export interface PresenceMember {
  /** The token's `sub`; for an anonymous session, its public id. */
  readonly user: string;
  /** Set when `user` is a session's public id (no token named anyone). */
  readonly anonymous?: true;
  /** The token's `info` claim (or a decision hook's), when it is JSON of at most MAX_PRESENCE_INFO_BYTES. */
  readonly info?: unknown;
  /** How many sessions (tabs, devices) the user is subscribed with. */
  readonly connections: number;
  /** When its first session still subscribed joined, in ms since the epoch. */
  readonly joinedAt: number;
  /** Its sessions: public id, node, when each joined. */
  readonly sessions: readonly { readonly id: string; readonly node: string; readonly joinedAt: number }[];
}

/**
 * What a session shows as a member: its token's subject and info, or its public id (with the
 * handle an anonymous session's page chose as its info, if any).
 */
export function presenceJoin(publicId: string, principal: Principal | undefined, handle?: unknown): PresenceJoin {
  const user = principal?.subject;
  if (user === undefined || user === '') {
    const shown = shownInfo(handle);
    return shown === undefined ? { session: publicId, user: publicId, anonymous: true } : { session: publicId, user: publicId, anonymous: true, info: shown };
  }
  const info = shownInfo(principal!.claims.info);
  return info === undefined ? { session: publicId, user } : { session: publicId, user, info };
}

/** `info` if it is a JSON object or value small enough to show, else undefined. */
export function shownInfo(info: unknown): unknown {
  if (info === undefined || info === null) return undefined;
  try {
    const json = JSON.stringify(info);
    return json !== undefined && Buffer.byteLength(json) <= MAX_PRESENCE_INFO_BYTES ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Groups the engine's entries (one per session) into members (one per user), oldest first. */
export function membersOf(entries: readonly PresenceEntry[]): PresenceMember[] {
  const byUser = new Map<string, PresenceEntry[]>();
  for (const entry of entries) {
    const key = memberKey(entry);
    const found = byUser.get(key);
    if (found === undefined) byUser.set(key, [entry]);
    else found.push(entry);
  }
  const members: PresenceMember[] = [];
  for (const sessions of byUser.values()) {
    sessions.sort((a, b) => a.joinedAt - b.joinedAt);
    // The newest session's info wins: a user who renamed themselves shows the new name.
    const { user, anonymous, info } = sessions[sessions.length - 1]!;
    members.push({
      user,
      ...(anonymous === true ? { anonymous } : {}),
      ...(info === undefined ? {} : { info }),
      connections: sessions.length,
      joinedAt: sessions[0]!.joinedAt,
      sessions: sessions.map(({ session, node, joinedAt }) => ({ id: session, node, joinedAt })),
    });
  }
  return members.sort((a, b) => a.joinedAt - b.joinedAt || (a.user < b.user ? -1 : 1));
}

/** The key one user goes by in a channel's member set: an anonymous id never matches a `sub`. */
export function memberKey(member: { readonly user: string; readonly anonymous?: true }): string {
  return member.anonymous === true ? `s:${member.user}` : `u:${member.user}`;
}

/** What a presence listing says: users and connections, and (unless only counted) the first `limit` members. */
export interface PresenceListing {
  readonly channel: string;
  readonly users: number;
  readonly connections: number;
  readonly members?: readonly PresenceMember[];
}

/** The listing of `channel` from the engine's entries; `limit` undefined: counts only. */
export function presenceListing(channel: string, entries: readonly PresenceEntry[], limit: number | undefined): PresenceListing {
  if (limit === undefined) {
    const users = new Set(entries.map((entry) => memberKey(entry)));
    return { channel, users: users.size, connections: entries.length };
  }
  const members = membersOf(entries);
  return { channel, users: members.length, connections: entries.length, members: members.slice(0, limit) };
}
