/**
 * @module
 * Origin checks and CORS. Browsers attach cookies to cross-origin requests, so an origin that is
 * not allowed is refused outright (403), not merely denied the CORS headers: the request would
 * otherwise act with the user's session (CSRF). Allowed origins are echoed, never `*`, because
 * the CometD and Faye clients send credentials.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const LOCALHOST_ORIGINS = 'localhost';

export interface OriginPolicy {
  /** True when a request carrying this Origin header may be served. Requests without one always may. */
  allows(origin: string, req: IncomingMessage): boolean;
}

/**
 * `allowed`: exact origins (`https://app.example.com`), `*` for any origin, `localhost` for
 * http(s)://localhost, 127.0.0.1 and [::1] on any port. The server's own origin is always allowed.
 */
export function createOriginPolicy(allowed: readonly string[]): OriginPolicy {
  const anyOrigin = allowed.includes('*');
  const localhost = allowed.includes(LOCALHOST_ORIGINS);
  const exact = new Set(allowed.filter((o) => o !== '*' && o !== LOCALHOST_ORIGINS).map(normalise));
  return {
    allows(origin, req) {
      if (anyOrigin) return true;
      const normalised = normalise(origin);
      if (exact.has(normalised)) return true;
      let url: URL;
      try {
        url = new URL(origin);
      } catch {
        return false;
      }
      if (url.host === req.headers.host) return true;
      return localhost && (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHost(url.hostname);
    },
  };
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '127.0.0.1' || hostname === '[::1]';
}

function normalise(origin: string): string {
  return origin.trim().replace(/\/+$/, '').toLowerCase();
}

export type CorsHeaders = Record<string, string>;

/** The CORS headers for a request from an allowed origin (none for same-host requests without Origin). */
export function corsHeaders(req: IncomingMessage): CorsHeaders {
  const origin = req.headers.origin;
  if (origin === undefined) return {};
  // A poll's cursor travels in headers a page must be allowed to read (rest/subscribe-poll.ts).
  return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': 'ETag, Herald-Position', Vary: 'Origin' };
}

const ALLOWED_REQUEST_HEADERS = 'Accept, Authorization, Cache-Control, Content-Type, If-None-Match, Last-Event-ID, Pragma, X-Requested-With';

export function answerPreflight(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(204, {
    ...corsHeaders(req),
    'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
    'Access-Control-Allow-Headers': ALLOWED_REQUEST_HEADERS,
    'Access-Control-Max-Age': '86400',
    'Content-Length': '0',
  });
  res.end();
}
