/**
 * @module
 * What never reaches a log line or an operator's screen: passwords in URLs, tokens and keys in
 * query strings (`?token=`, `access_token`, the dashboard's `?key=`), and credential headers
 * (`Authorization`, `Cookie` with its `herald_token`). One function for URLs and one for headers,
 * used by the logger that Herald wraps around every logger it is given, by `herald serve`'s
 * start line, by `herald config --print` and by the Redis engine's errors.
 */

const MASK = '***';

/** Query parameters that carry a credential. */
const SECRET_PARAMS = ['token', 'access_token', 'id_token', 'refresh_token', 'key', 'api_key', 'apikey', 'password', 'passwd', 'secret', 'auth', 'jwt', 'herald_token', 'signature', 'sig'];
const SECRET_PARAM = new RegExp(`([?&;](?:${SECRET_PARAMS.join('|')})=)[^&;#\\s"']*`, 'gi');

/** Headers that carry a credential. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'x-auth-token']);

/**
 * `redis://user:pass@host/…` → `redis://user:***@host/…` (a password may hold `@`: the user
 * information ends at the last `@` before the path), `…?token=abc&x=1` → `…?token=***&x=1`.
 * Works on any text, so a URL inside a message is caught too.
 */
export function redactUrl(text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^/?#\s"']*)@/gi, (_, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      // Without a colon the whole of it may be a token (https://TOKEN@host): all of it goes.
      return `${scheme}${colon < 0 ? MASK : `${userinfo.slice(0, colon)}:${MASK}`}@`;
    })
    .replace(SECRET_PARAM, `$1${MASK}`);
}

/** A copy of `headers` with credentials masked. */
export function redactHeaders(headers: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, SECRET_HEADERS.has(name.toLowerCase()) ? MASK : typeof value === 'string' ? redactUrl(value) : value]));
}

/** A log line's fields with every URL and header redacted (a copy; the fields are left as they were). */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const [name, value] of Object.entries(fields)) {
    let redacted = value;
    if (typeof value === 'string') redacted = redactUrl(value);
    else if (name === 'headers' && typeof value === 'object' && value !== null) redacted = redactHeaders(value as Record<string, unknown>);
    if (redacted !== value) (copy ??= { ...fields })[name] = redacted;
  }
  return copy ?? fields;
}
