import { hubErrors } from '../errors.js';
import { BUILT_IN_POLICIES, generateKey, grants, type Right, type SharedAccessPolicy } from './policies.js';
import { isExpired, parseSasToken, signedWith, type SasToken } from './sas-token.js';
import type { IdentityStore } from '../store/identity-store.js';

/** Why a device's connect was refused; the MQTT gateway maps each to IoT Hub's CONNACK code. */
export type DeviceAuthFailure = 'malformed' | 'expired' | 'wrongAudience' | 'badSignature' | 'unknownIdentity' | 'disabled';

/**
 * Checks every SAS token the hub receives: signature, expiry, audience, and the policy's rights.
 * Device keys are read from the store on each check, so a regenerated key or a disabled device
 * takes effect at once; the policies are read once (nothing changes them while the hub runs).
 */
export class Authenticator {
  private readonly policies: Map<string, SharedAccessPolicy>;

  constructor(
    readonly hostName: string,
    private readonly store: IdentityStore,
  ) {
    if (store.policies().length === 0) {
      for (const { keyName, rights } of BUILT_IN_POLICIES) {
        store.putPolicy({ keyName, rights, primaryKey: generateKey(), secondaryKey: generateKey() });
      }
    }
    this.policies = new Map(store.policies().map((p) => [p.keyName, p]));
  }

  policy(keyName: string): SharedAccessPolicy | undefined {
    return this.policies.get(keyName);
  }

  /** For the REST API: a 401 for a bad or expired token, a 403 for a policy that lacks the right. */
  /** Checks a service request's SAS token; `right` may list alternatives, any one of which suffices. */
  authorizeService(authorization: string | undefined, right: Right | readonly Right[]): SharedAccessPolicy {
    if (!authorization) throw hubErrors.unauthorized('The request has no Authorization header with a SharedAccessSignature');
    const token = parseSasToken(authorization);
    if (!token) throw hubErrors.unauthorized('The SharedAccessSignature is malformed');
    const policy = this.checkServiceToken(token);
    const rights: readonly Right[] = typeof right === 'string' ? [right] : right;
    if (!rights.some((r) => grants(policy, r))) {
      throw hubErrors.forbidden(`The policy '${policy.keyName}' does not grant ${rights.join(' or ')}`);
    }
    return policy;
  }

  /**
   * For the Event Hub-compatible endpoint's CBS: true when the token is for `audience` (or a path
   * above it), unexpired, and signed, the Event Hubs way, with a key of a policy that grants `right`.
   */
  verifyServiceToken(tokenText: string, audience: string, right: Right = 'ServiceConnect'): boolean {
    const token = parseSasToken(tokenText);
    if (!token || isExpired(token) || !token.keyName) return false;
    const resource = token.resource.replace(/\/+$/, '');
    const wanted = audience.toLowerCase().replace(/\/+$/, '');
    if (wanted !== resource && !wanted.startsWith(`${resource}/`)) return false;
    return policyKeys(this.policy(token.keyName), right).some((key) => signedWith(token, key, 'utf8'));
  }

  /**
   * A device or module connect: the token must be scoped to that identity and signed with its key,
   * or with a policy key that grants DeviceConnect.
   */
  authenticateDevice(tokenText: string, deviceId: string, moduleId?: string): DeviceAuthFailure | undefined {
    const token = parseSasToken(tokenText);
    if (!token) return 'malformed';
    if (isExpired(token)) return 'expired';
    const identityPath = `${this.hostName}/devices/${deviceId}${moduleId ? `/modules/${moduleId}` : ''}`.toLowerCase();
    // A policy token may be scoped to a prefix (the hub, a device); an identity's own token names exactly that
    // identity, so a device's token never opens its modules' connections, even when they share a key.
    const inScope = token.resource === identityPath || (token.keyName !== undefined && identityPath.startsWith(token.resource + '/'));
    if (!inScope) return 'wrongAudience';
    const identity = this.store.get(deviceId, moduleId ?? '');
    if (!identity) return 'unknownIdentity';
    const keys = token.keyName
      ? policyKeys(this.policy(token.keyName), 'DeviceConnect')
      : [identity.primaryKey, identity.secondaryKey];
    if (!keys.some((key) => signedWith(token, key))) return 'badSignature';
    const device = moduleId ? this.store.get(deviceId) : identity;
    if (identity.status !== 'enabled' || device?.status !== 'enabled') return 'disabled';
    return undefined;
  }

  private checkServiceToken(token: SasToken): SharedAccessPolicy {
    if (isExpired(token)) throw hubErrors.unauthorized('The SharedAccessSignature has expired');
    const host = this.hostName.toLowerCase();
    const audienceOk = token.resource === host || token.resource.startsWith(host + '/');
    if (!audienceOk) throw hubErrors.unauthorized(`The SharedAccessSignature is for '${token.resource}', not for this hub '${host}'`);
    const policy = token.keyName ? this.policy(token.keyName) : undefined;
    if (!policy) throw hubErrors.unauthorized(`Unknown shared access policy '${token.keyName ?? ''}'`);
    if (!policyKeys(policy).some((key) => signedWith(token, key))) {
      throw hubErrors.unauthorized(`The SharedAccessSignature is not signed with a key of policy '${policy.keyName}'`);
    }
    return policy;
  }
}

function policyKeys(policy: SharedAccessPolicy | undefined, right?: Right): string[] {
  if (!policy || (right && !grants(policy, right))) return [];
  return [policy.primaryKey, policy.secondaryKey];
}
