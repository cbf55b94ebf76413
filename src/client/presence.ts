/**
 * @module
 * What the client is told of a channel's members: join and leave events, counts of crowded
 * channels, and presence listings.
 */

/** A member of a channel, as join and leave events tell it (the server's `presence()` lists more). */
export interface PresenceMember {
  /** The token's `sub`, or an anonymous session's public id (`anonymous`). */
  readonly user: string;
  readonly anonymous?: true;
  /** What the token (or the backend) says of the user, e.g. `{ name: 'Ada' }`. */
  readonly info?: any;
  /** Its connections to the channel (not told on leave). */
  readonly connections?: number;
}

/** A crowded channel's count, told instead of joins and leaves. */
export interface PresenceCount {
  readonly users: number;
  readonly connections: number;
}

export interface SubscriptionEvents {
  join: (member: PresenceMember) => void;
  leave: (member: PresenceMember) => void;
  count: (count: PresenceCount) => void;
}

/** Who is on a channel: users and connections, and the members unless only counted. */
export interface PresenceListing {
  readonly channel: string;
  readonly users: number;
  readonly connections: number;
  readonly members?: readonly (PresenceMember & { readonly connections: number; readonly joinedAt: number })[];
}
