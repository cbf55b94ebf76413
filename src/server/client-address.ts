/**
 * @module
 * Who the client is when proxies stand between: the address of the peer, unless the peer is a
 * trusted proxy, in which case the hops it reports in `X-Forwarded-For` (or, without one,
 * `Forwarded`) are walked from the right, and the first that is not a trusted proxy is the
 * client. Only the right-most hops can be believed: each trusted proxy appends the address it
 * saw, and everything left of the last untrusted hop was written by the client itself.
 */
import { isIP } from 'node:net';

/** An address range: IPv4 as 4 bytes, IPv6 as 16, and how many leading bits must match. */
interface AddressRange {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/** `10.0.0.0/8`, `::1`, `fd00::/8`, `192.168.1.7`: a range, or undefined if it is not one. */
export function parseAddressRange(text: string): AddressRange | undefined {
  const slash = text.indexOf('/');
  const bytes = addressBytes(slash < 0 ? text : text.slice(0, slash));
  if (bytes === undefined) return undefined;
  const most = bytes.length * 8;
  if (slash < 0) return { bytes, bits: most };
  const bitsText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > most) return undefined;
  return { bytes, bits: Number(bitsText) };
}

/** The bytes of an address; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as Node reports IPv4 peers on a dual-stack socket) as its IPv4 address. */
function addressBytes(text: string): Uint8Array | undefined {
  const address = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const version = isIP(address);
  if (version === 4) return Uint8Array.from(address.split('.').map(Number));
  if (version !== 6) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return addressBytes(mapped[1]!);
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const groups = (part: string | undefined) => (part === undefined || part === '' ? [] : part.split(':'));
  let words = groups(head);
  const end = groups(tail);
  // A dotted IPv4 tail (::1.2.3.4) is two groups.
  const last = end.length > 0 ? end : words;
  const dotted = last.length > 0 && last[last.length - 1]!.includes('.') ? last.pop()! : undefined;
  if (dotted !== undefined) {
    const four = addressBytes(dotted)!;
    last.push(((four[0]! << 8) | four[1]!).toString(16), ((four[2]! << 8) | four[3]!).toString(16));
  }
  if (tail !== undefined) words = [...words, ...Array(8 - words.length - end.length).fill('0'), ...end];
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    const value = parseInt(word, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

function contains(range: AddressRange, bytes: Uint8Array): boolean {
  if (range.bytes.length !== bytes.length) return false;
  for (let bit = 0; bit < range.bits; bit += 8) {
    const left = Math.min(8, range.bits - bit);
    const mask = (0xff << (8 - left)) & 0xff;
    if ((range.bytes[bit / 8]! & mask) !== (bytes[bit / 8]! & mask)) return false;
  }
  return true;
}

/** A hop as proxies write it, without brackets or port: `[::1]:80` → `::1`, `10.0.0.1:5000` → `10.0.0.1`. */
function hopAddress(hop: string): string {
  if (hop.startsWith('[')) return hop.slice(1, hop.indexOf(']') < 0 ? undefined : hop.indexOf(']'));
  return /^[\d.]+:\d+$/.test(hop) ? hop.slice(0, hop.lastIndexOf(':')) : hop;
}

/** The hops a `Forwarded` header names, in order (`for=` of each element; quoted, bracketed, with ports). */
function forwardedHops(header: string): string[] {
  const hops: string[] = [];
  for (const element of header.split(',')) {
    const pair = element.split(';').map((p) => p.trim()).find((p) => p.toLowerCase().startsWith('for='));
    if (pair === undefined) continue;
    let value = pair.slice(4).trim().replace(/^"|"$/g, '');
    hops.push(value);
  }
  return hops;
}

export interface ClientAddressOptions {
  /** Addresses and ranges of the proxies whose forwarding headers are believed. */
  readonly trustedProxies: readonly string[];
}

/** A function from a peer address and the request's headers to the client's address. */
export type ClientAddressOf = (peer: string | undefined, headers: { readonly [name: string]: string | string[] | undefined }) => string | undefined;

export function clientAddressResolver(options: ClientAddressOptions): ClientAddressOf {
  const ranges = options.trustedProxies.map((text) => parseAddressRange(text)).filter((range): range is AddressRange => range !== undefined);
  if (ranges.length === 0) return (peer) => peer;
  const trusted = (address: string) => {
    const bytes = addressBytes(address);
    return bytes !== undefined && ranges.some((range) => contains(range, bytes));
  };
  return (peer, headers) => {
    if (peer === undefined || !trusted(peer)) return peer;
    const xff = headers['x-forwarded-for'];
    const forwarded = headers.forwarded;
    const hops =
      xff !== undefined ? (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((hop) => hopAddress(hop.trim())) : forwarded !== undefined ? forwardedHops(Array.isArray(forwarded) ? forwarded.join(',') : forwarded).map(hopAddress) : [];
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      // A hop that is no address (garbage, `unknown`, an obfuscated name) ends the walk at what is known.
      if (addressBytes(hop) === undefined) break;
      client = hop;
      if (!trusted(hop)) break;
    }
    return client;
  };
}
