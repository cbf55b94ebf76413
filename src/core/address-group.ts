/**
 * @module
 * Whom a per-address limit counts as one client. An IPv4 address is one client; an IPv6 host
 * is handed a whole /64 by its network (and picks a new address in it at will, RFC 8981), so
 * counting full IPv6 addresses would let one machine open sessions, publish and call hooks
 * without bound by rotating its address. Per-address limits therefore count IPv6 by /64.
 */
/** The leading bits of an IPv6 address one client is counted by. */
export const IPV6_CLIENT_PREFIX_BITS = 64;

/**
 * The key a per-address limit counts `address` under: an IPv4 address (also one written as
 * IPv4-mapped IPv6, as dual-stack sockets report it) as itself, an IPv6 address as its /64
 * (`2001:db8:1:2::/64`), anything else (no address, a name) unchanged.
 */
export function addressGroup(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (!looksLikeIpv6(bare)) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped !== null) return mapped[1];
  return `${leadingGroups(bare).join(':')}::/${IPV6_CLIENT_PREFIX_BITS}`;
}

/** Addresses here come from sockets or from hops the client-address resolver checked: the shape is enough. */
function looksLikeIpv6(text: string): boolean {
  const zone = text.indexOf('%');
  const address = zone < 0 ? text : text.slice(0, zone);
  return address.includes(':') && /^[0-9a-f:.]+$/i.test(address) && address.split('::').length <= 2;
}

/** The first four 16-bit groups of a valid IPv6 address, lower-case, without leading zeros. */
function leadingGroups(address: string): string[] {
  const zone = address.indexOf('%');
  const text = zone < 0 ? address : address.slice(0, zone);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const split = (part: string | undefined) => (part === undefined || part === '' ? [] : part.split(':'));
  const front = split(head);
  // An IPv4 tail (::1.2.3.4) is two groups; it never reaches the first four unless the rest is zeros.
  const back = split(tail).flatMap((group) => (group.includes('.') ? ['0', '0'] : [group]));
  const groups = tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return groups.slice(0, IPV6_CLIENT_PREFIX_BITS / 16).map((group) => parseInt(group, 16).toString(16));
}
