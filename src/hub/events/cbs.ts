import type { Message } from 'rhea';
import { entityPath, pathCovers } from './addresses.js';
import { errorReply, type Reply } from './request-response.js';

// Claims-based security: before opening a link the client puts a token on $cbs for the link's
// audience; the connection then holds that claim, and links under the audience may attach.

/** Checks a token (e.g. `SharedAccessSignature sr=..&sig=..&se=..&skn=..`) for an audience URI. */
export type VerifyToken = (token: string, audience: string) => boolean;

/** The audiences a connection holds tokens for. */
export class Claims {
  private readonly paths = new Set<string>();

  add(audience: string): void {
    this.paths.add(entityPath(audience));
  }

  covers(path: string): boolean {
    for (const granted of this.paths) if (pathCovers(granted, path)) return true;
    return false;
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
    return errorReply(401, 'amqp:unauthorized-access',
      `Unauthorized: the token is not valid for '${audience}' (check the key, its expiry and the policy's rights).`);
  }
  claims.add(audience);
  return { statusCode: 200, statusDescription: 'OK' };
}
