import type { Message } from 'rhea';
import { parseSasToken } from '../auth/sas-token.js';
import { decodeSegment } from '../auth/scope.js';
import { entityPath, pathCovers } from './addresses.js';
import { errorReply, type Reply } from './request-response.js';

// Claims-based security: before opening a link the client puts a token on $cbs for the link's
// audience; the connection then holds that claim until the token expires, and links under the
// audience may attach. A put-token for the same audience replaces the claim (the SDKs renew so).

/**
 * What an accepted token grants on its audience: `rights` (IoT Hub's ServiceConnect, DeviceConnect;
 * undefined: whatever a link asks, as on Event Hubs), and whether it reaches only the audience itself
 * (`exact`: a device's own token opens its device's links, never its modules').
 */
export interface Grant {
  rights?: readonly string[];
  exact?: boolean;
}

/** Checks a token (e.g. `SharedAccessSignature sr=..&sig=..&se=..&skn=..`) for an audience URI: false, or what it grants (true: everything). */
export type VerifyToken = (token: string, audience: string) => boolean | Grant;

interface Claim extends Grant {
  expiresAtMs: number;
}

/** The audiences a connection holds tokens for, each until its token expires. */
export class Claims {
  /** Entity path → what its token grants and when it expires (ms since the epoch). */
  private readonly claims = new Map<string, Claim>();

  add(audience: string, expiresAtMs: number, grant: Grant = {}): void {
    this.claims.set(entityPath(audience).toLowerCase(), { ...grant, expiresAtMs });
  }

  /** Whether an unexpired claim reaches `path` (and grants `right`, when one is asked). */
  covers(path: string, right?: string, nowMs = Date.now()): boolean {
    for (const [granted, claim] of this.claims) {
      if (claim.expiresAtMs <= nowMs) continue;
      if (right !== undefined && claim.rights && !claim.rights.includes(right)) continue;
      if (claim.exact ? granted === path.toLowerCase() : pathCovers(granted, path)) return true;
    }
    return false;
  }

  /** When the first of the tokens held expires (Infinity when none will). */
  nextExpiry(): number {
    let next = Infinity;
    for (const claim of this.claims.values()) next = Math.min(next, claim.expiresAtMs);
    return next;
  }

  /** Forgets the claims whose tokens expired by `nowMs`. */
  prune(nowMs = Date.now()): void {
    for (const [path, claim] of this.claims) if (claim.expiresAtMs <= nowMs) this.claims.delete(path);
  }

  /** Forgets the claims on exactly `path` (an identity whose keys changed: its tokens no longer hold). */
  forget(path: string): boolean {
    return this.claims.delete(path.toLowerCase());
  }
}

/** Answers a $cbs request: put-token adds the claim when the token is good for the audience. */
export function handleCbsRequest(request: Message, verifyToken: VerifyToken, claims: Claims): Reply {
  const properties = request.application_properties ?? {};
  if (properties.operation !== 'put-token') {
    return errorReply(400, 'amqp:not-implemented', `The $cbs operation '${String(properties.operation)}' is not supported.`);
  }
  // The device SDKs put a token's `sr` as the audience, URL-encoded (`hub%2Fdevices%2Fd1`).
  const audience = typeof properties.name === 'string' ? decodeSegment(properties.name) : properties.name;
  const token = Buffer.isBuffer(request.body) ? request.body.toString('utf8') : request.body;
  if (typeof audience !== 'string' || typeof token !== 'string') {
    return errorReply(400, 'com.microsoft:argument-error', 'A put-token request needs the audience as name and the token as body.');
  }
  let grant: boolean | Grant;
  try {
    grant = verifyToken(token, audience);
  } catch {
    grant = false;
  }
  if (!grant) {
    return errorReply(
      401,
      'amqp:unauthorized-access',
      `Unauthorized: the token is not valid for '${audience}' (check the key, its expiry and the policy's rights).`,
    );
  }
  claims.add(audience, tokenExpiry(token, properties.expiration), grant === true ? {} : grant);
  return { statusCode: 200, statusDescription: 'OK' };
}

/** A SAS token's own `se`; for other kinds, the request's optional `expiration` (the CBS spec's). */
function tokenExpiry(token: string, expiration: unknown): number {
  const sas = parseSasToken(token);
  if (sas) return sas.expiry * 1000;
  if (expiration instanceof Date) return expiration.getTime();
  return typeof expiration === 'number' ? expiration : Infinity;
}
