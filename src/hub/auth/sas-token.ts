import { createHmac, timingSafeEqual } from 'node:crypto';

/** A parsed `SharedAccessSignature sr=..&sig=..&se=..[&skn=..]` token. */
export interface SasToken {
  /** The resource URI exactly as it appears in the token (still URL-encoded). */
  rawResource: string;
  /** The decoded, lower-cased resource URI: `host`, or `host/devices/{id}[/modules/{id}]`. */
  resource: string;
  signature: string;
  expiry: number;
  keyName?: string;
}

const PREFIX = 'SharedAccessSignature ';

export function parseSasToken(token: string): SasToken | undefined {
  if (!token.startsWith(PREFIX)) return undefined;
  const fields = new Map<string, string>();
  for (const part of token.slice(PREFIX.length).split('&')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const rawResource = fields.get('sr');
  const sig = fields.get('sig');
  const se = Number(fields.get('se'));
  if (!rawResource || !sig || !Number.isFinite(se)) return undefined;
  try {
    const skn = fields.get('skn');
    return {
      rawResource,
      resource: decodeURIComponent(rawResource).toLowerCase(),
      signature: decodeURIComponent(sig),
      expiry: se,
      keyName: skn ? decodeURIComponent(skn) : undefined,
    };
  } catch {
    return undefined; // malformed percent-encoding
  }
}

/**
 * How the signing key is turned into HMAC key bytes: IoT Hub clients decode the base64 key, Event
 * Hubs clients (also on IoT Hub's Event Hub-compatible endpoint) use the key's text as it stands.
 */
export type KeyBytes = 'base64' | 'utf8';

export function sign(key: string, resource: string, expiry: number, keyBytes: KeyBytes = 'base64'): string {
  return createHmac('sha256', Buffer.from(key, keyBytes)).update(`${resource}\n${expiry}`).digest('base64');
}

/**
 * True when the token was signed with `key`. The SDKs sign the resource as it stands in the token,
 * some encoded and some not, so both spellings are accepted.
 */
export function signedWith(token: SasToken, key: string, keyBytes: KeyBytes = 'base64'): boolean {
  const expected = Buffer.from(token.signature);
  return [token.rawResource, encodeURIComponent(decodeURIComponent(token.rawResource))].some((resource) => {
    const actual = Buffer.from(sign(key, resource, token.expiry, keyBytes));
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  });
}

export function isExpired(token: SasToken, nowMs = Date.now()): boolean {
  return token.expiry * 1000 <= nowMs;
}

/** Builds a token, as the SDKs do (used by the hub for its own printed strings and by tests). */
export function createSasToken(resource: string, key: string, keyName: string | undefined, ttlSeconds: number): string {
  const sr = encodeURIComponent(resource);
  const se = Math.ceil(Date.now() / 1000) + ttlSeconds;
  const sig = encodeURIComponent(sign(key, sr, se));
  return `${PREFIX}sr=${sr}&sig=${sig}&se=${se}${keyName ? `&skn=${encodeURIComponent(keyName)}` : ''}`;
}
