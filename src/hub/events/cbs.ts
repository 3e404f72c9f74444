import type { Message } from 'rhea';
import { parseSasToken } from '../auth/sas-token.js';
import { entityPath, pathCovers } from './addresses.js';
import { errorReply, type Reply } from './request-response.js';

// Claims-based security: before opening a link the client puts a token on $cbs for the link's
// audience; the connection then holds that claim until the token expires, and links under the
// audience may attach. A put-token for the same audience replaces the claim (the SDKs renew so).

/** Checks a token (e.g. `SharedAccessSignature sr=..&sig=..&se=..&skn=..`) for an audience URI. */
export type VerifyToken = (token: string, audience: string) => boolean;

/** The audiences a connection holds tokens for, each until its token expires. */
export class Claims {
  /** Entity path → when its token expires (ms since the epoch). */
  private readonly expiries = new Map<string, number>();

  add(audience: string, expiresAtMs: number): void {
    this.expiries.set(entityPath(audience).toLowerCase(), expiresAtMs);
  }

  covers(path: string, nowMs = Date.now()): boolean {
    for (const [granted, expiresAtMs] of this.expiries) if (expiresAtMs > nowMs && pathCovers(granted, path)) return true;
    return false;
  }

  /** When the first of the tokens held expires (Infinity when none will). */
  nextExpiry(): number {
    return Math.min(Infinity, ...this.expiries.values());
  }

  /** Forgets the claims whose tokens expired by `nowMs`. */
  prune(nowMs = Date.now()): void {
    for (const [path, expiresAtMs] of this.expiries) if (expiresAtMs <= nowMs) this.expiries.delete(path);
  }
}

/** Answers a $cbs request: put-token adds the claim when the token is good for the audience. */
export function handleCbsRequest(request: Message, verifyToken: VerifyToken, claims: Claims): Reply {
  const properties = request.application_properties ?? {};
  if (properties.operation !== 'put-token') {
    return errorReply(400, 'amqp:not-implemented', `The $cbs operation '${String(properties.operation)}' is not supported.`);
  }
  const audience = properties.name;
  const token = Buffer.isBuffer(request.body) ? request.body.toString('utf8') : request.body;
  if (typeof audience !== 'string' || typeof token !== 'string') {
    return errorReply(400, 'com.microsoft:argument-error', 'A put-token request needs the audience as name and the token as body.');
  }
  let valid: boolean;
  try {
    valid = verifyToken(token, audience);
  } catch {
    valid = false;
  }
  if (!valid) {
    return errorReply(
      401,
      'amqp:unauthorized-access',
      `Unauthorized: the token is not valid for '${audience}' (check the key, its expiry and the policy's rights).`,
    );
  }
  claims.add(audience, tokenExpiry(token, properties.expiration));
  return { statusCode: 200, statusDescription: 'OK' };
}

/** A SAS token's own `se`; for other kinds, the request's optional `expiration` (the CBS spec's). */
function tokenExpiry(token: string, expiration: unknown): number {
  const sas = parseSasToken(token);
  if (sas) return sas.expiry * 1000;
  if (expiration instanceof Date) return expiration.getTime();
  return typeof expiration === 'number' ? expiration : Infinity;
}
