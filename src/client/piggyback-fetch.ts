/**
 * @module
 * `herald.fetch()`: the page's own requests to its server, carrying back the messages queued for
 * this client's session (the server's `herald.piggyback(req, res, body)`), so a page that polls
 * gets them with an answer it waited for anyway. The caller sees the application's response as if
 * nothing had happened; the messages go to the subscribers, in order, the way a connect's do.
 *
 * The session is named in the `Herald-Session` header, only on requests to the Herald server's
 * own origin (the clientId is the session's secret), and only while the connection has the one
 * place for a reply carrying deliveries (Connection.takeDeliveriesSlot): otherwise, or when the
 * caller passes a `signal` (an aborted reply may have carried messages, which would cost a
 * reconnect to resume), the request goes out untouched.
 */
import type { Connection } from './connection.js';
import { TransportError } from './transports/transport.js';

/** Must match the server's (src/server/piggyback.ts). */
export const SESSION_HEADER = 'Herald-Session';
export const DELIVERIES_HEADER = 'Herald-Deliveries';

export async function fetchWithDeliveries(connection: Connection, fetchImpl: typeof fetch, input: RequestInfo | URL, init: RequestInit | undefined, maxNetworkDelayMs: number): Promise<Response> {
  const slot = init?.signal == null ? connection.takeDeliveriesSlot() : undefined;
  if (slot === undefined) return fetchImpl(input, init);
  // Past this, polls must go on, and not in this session: what the server took off its queue for
  // this reply would come after what they bring, and a resume from the newest id seen would skip
  // it. The connection starts over now, resuming from what was seen before this request, as when
  // a Bayeux request's reply is that late; this reply's messages are then dropped.
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    connection.fail(new TransportError(`no reply within ${maxNetworkDelayMs} ms to a request that could carry deliveries`));
  }, maxNetworkDelayMs);
  try {
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set(SESSION_HEADER, slot.clientId);
    const response = await fetchImpl(input, { ...init, headers });
    const count = response.headers.get(DELIVERIES_HEADER);
    if (count === null) return response;
    const envelope = (await response.json()) as { herald?: unknown; body?: unknown };
    const deliveries = envelope.herald;
    if (!Array.isArray(deliveries) || !deliveries.every((m) => typeof m === 'object' && m !== null && typeof m.channel === 'string')) {
      throw new TransportError('the server sent deliveries that are not Bayeux messages');
    }
    // Late, the connection has started over already: history brings them to the next one.
    if (!late) connection.receive(deliveries);
    const unwrapped = new Headers(response.headers);
    unwrapped.delete(DELIVERIES_HEADER);
    unwrapped.delete('content-length');
    return new Response(JSON.stringify(envelope.body), { status: response.status, statusText: response.statusText, headers: unwrapped });
  } catch (error) {
    // The server may have taken messages off the queue for a reply that never arrived whole:
    // the connection starts over and resumes them from history.
    connection.fail(new TransportError(`a request that could carry deliveries failed: ${error instanceof Error ? error.message : String(error)}`));
    throw error;
  } finally {
    clearTimeout(timer);
    slot.release();
  }
}
