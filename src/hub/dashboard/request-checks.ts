import type { IncomingMessage, ServerResponse } from 'node:http';

/** The header every state-changing call of the page carries; a cross-site form or image cannot set it. */
export const UI_HEADER = 'x-iothub-tut-ui';

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** What every dashboard response carries: the page loads only its own files and talks only to its hub. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

export function setSecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
}

/**
 * Why a request may not reach the dashboard, or undefined when it may. The Host must be one of the
 * hub's own names (a page of another site that rebinds its DNS name to 127.0.0.1 carries its own);
 * a state-changing call must come from the page itself: the custom header (which a cross-site
 * request could only send after a CORS preflight the hub never grants) and, when the browser says
 * where it comes from, this origin. The session cookie is SameSite=Strict on top of that.
 */
export function refusal(req: IncomingMessage, hostNames: readonly string[], port: number): string | undefined {
  const host = req.headers.host?.toLowerCase();
  const allowedHosts = hostNames.map((name) => `${name.toLowerCase()}:${port}`);
  if (port === 443) allowedHosts.push(...hostNames.map((name) => name.toLowerCase()));
  if (!host || !allowedHosts.includes(host)) return `Host '${host ?? ''}' is not this hub`;
  const site = req.headers['sec-fetch-site'];
  // A link typed or pasted in ('none'), or the page itself; not another origin, even of the same site
  // (to cookies, any web app on localhost is the same site, whatever its port).
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `a request from another origin (Sec-Fetch-Site: ${site})`;
  if (!UNSAFE_METHODS.has(req.method ?? 'GET')) return undefined;
  if (req.headers[UI_HEADER] !== '1') return `a ${req.method} without the ${UI_HEADER} header`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `https://${host}`) return `a ${req.method} from origin '${origin}'`;
  return undefined;
}

/** The value of one cookie of the request. */
export function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The session cookie: never readable by scripts, sent only over TLS, only to this site's /ui/ pages. */
export function sessionCookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/ui; Secure; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}`;
}
