import { hubErrors } from '../errors.js';
import { BUILT_IN_POLICIES, generateKey, grants, type Right, type SharedAccessPolicy } from './policies.js';
import { isExpired, parseSasToken, signedWith, type KeyBytes, type SasToken } from './sas-token.js';
import { identityResource, reach, uriResource } from './scope.js';
import type { IdentityRecord, IdentityStore } from '../store/identity-store.js';
import type { X509Certificate } from 'node:crypto';
import { chainsTo, commonName, isValidAt, thumbprints } from './client-certificate.js';

/** Why a device's connect was refused; the MQTT gateway maps each to IoT Hub's CONNACK code. */
export type DeviceAuthFailure =
  | 'malformed'
  | 'expired'
  | 'wrongAudience'
  | 'badSignature'
  | 'unknownIdentity'
  | 'disabled'
  | 'notCertificateIdentity'
  | 'thumbprintMismatch'
  | 'untrustedCertificate'
  | 'wrongCommonName';

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
    /** The CA certificates whose devices' certificates the hub accepts (`hub start --trusted-ca`). */
    private readonly trustedCas: readonly X509Certificate[] = [],
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

  /**
   * Checks a REST request's SAS token: a 401 for a bad, expired or out-of-scope token, a 403 for a
   * policy that lacks the right (`right` may list alternatives, any one of which suffices). The
   * token's resource URI must reach the request's path (`/devices/d1` needs `{hub}`, `{hub}/devices`
   * or `{hub}/devices/d1`), and only a shared access policy's token serves: a device's or module's
   * own key grants DeviceConnect on its own endpoints, and the hub's REST API has none of those.
   */
  authorizeService(authorization: string | undefined, right: Right | readonly Right[], path: string): SharedAccessPolicy {
    if (!authorization) throw hubErrors.unauthorized('The request has no Authorization header with a SharedAccessSignature');
    const token = parseSasToken(authorization);
    if (!token) throw hubErrors.unauthorized('The SharedAccessSignature is malformed');
    const policy = this.checkServiceToken(token);
    const resource = [this.hostName, ...uriResource(path.replace(/^\/+/, ''))];
    if (!reach(token.resource, resource)) {
      throw hubErrors.unauthorized(
        `The SharedAccessSignature is scoped to '${token.resource}', which does not cover '${resource.join('/')}'`,
      );
    }
    const rights: readonly Right[] = typeof right === 'string' ? [right] : right;
    if (!rights.some((r) => grants(policy, r))) {
      throw hubErrors.forbidden(`The policy '${policy.keyName}' does not grant ${rights.join(' or ')}`);
    }
    return policy;
  }

  /**
   * For a CBS put-token: true when the token's resource URI reaches `audience` (the audience itself or
   * a path above it, by segments), it is unexpired, and it is signed with a key of a policy that grants
   * `right`: the Event Hubs way (`utf8`, HMAC keyed by the key's text) on the Event Hub-compatible
   * endpoint, IoT Hub's own (`base64`, the decoded key) on the service AMQP endpoint.
   */
  verifyServiceToken(tokenText: string, audience: string, right: Right = 'ServiceConnect', keyBytes: KeyBytes = 'utf8'): boolean {
    const token = parseSasToken(tokenText);
    if (!token || isExpired(token) || !token.keyName) return false;
    if (!reach(token.resource, uriResource(audience))) return false;
    return policyKeys(this.policy(token.keyName), right).some((key) => signedWith(token, key, keyBytes));
  }

  /**
   * A put-token on the hub's own AMQP endpoint, where services and devices share connections as on
   * IoT Hub: a policy's token grants those of ServiceConnect and DeviceConnect its policy has, on all
   * below its resource; an identity's own token, DeviceConnect on exactly that identity (an audience
   * `{host}/devices/{id}[/modules/{mid}]`, enabled, the token signed with its key). Undefined: refused.
   */
  verifyCbsToken(tokenText: string, audience: string): { rights: Right[]; exact: boolean } | undefined {
    const token = parseSasToken(tokenText);
    if (!token || isExpired(token)) return undefined;
    if (token.keyName) {
      const rights = CBS_RIGHTS.filter((right) => this.verifyServiceToken(tokenText, audience, right, 'base64'));
      return rights.length > 0 ? { rights, exact: false } : undefined;
    }
    const [, devices, deviceId, modules, moduleId, ...rest] = uriResource(audience.replace(/^[a-z][a-z0-9+.-]*:\/\//i, ''));
    const identityAudience =
      devices === 'devices' && deviceId && rest.length === 0 && (modules === undefined || (modules === 'modules' && moduleId));
    if (!identityAudience || this.authenticateDevice(tokenText, deviceId, moduleId)) return undefined;
    return { rights: ['DeviceConnect'], exact: true };
  }

  /**
   * A device or module connect: the token must be scoped to that identity and signed with its key,
   * or with a policy key that grants DeviceConnect.
   */
  authenticateDevice(tokenText: string, deviceId: string, moduleId?: string): DeviceAuthFailure | undefined {
    const token = parseSasToken(tokenText);
    if (!token) return 'malformed';
    if (isExpired(token)) return 'expired';
    // A policy token may be scoped to anything above the identity (the hub, `devices`, its device); an identity's
    // own token names exactly that identity (IoT Hub: device tokens are scoped to an individual device), so a
    // device's token never opens its modules' connections, even when they share a key.
    const reached = reach(token.resource, identityResource(this.hostName, deviceId, moduleId));
    if (token.keyName ? !reached : reached !== 'exact') return 'wrongAudience';
    const identity = this.store.get(deviceId, moduleId ?? '');
    if (!identity) return 'unknownIdentity';
    // An X.509 identity has no keys of its own to sign with (a policy's DeviceConnect still serves).
    const keys = token.keyName
      ? policyKeys(this.policy(token.keyName), 'DeviceConnect')
      : (identity.authenticationType ?? 'sas') === 'sas'
        ? [identity.primaryKey, identity.secondaryKey]
        : [];
    if (!keys.some((key) => signedWith(token, key))) return 'badSignature';
    return this.enabled(identity, deviceId, moduleId);
  }

  /**
   * A device or module connect with a client certificate and no token, as IoT Hub checks it: the
   * certificate must be valid now; a 'selfSigned' identity's thumbprint (SHA-1 or SHA-256, primary or
   * secondary) must be the certificate's; a 'certificateAuthority' identity's certificate must chain
   * to a CA the hub trusts, with its CN the device id ('{deviceId}/{moduleId}' for a module). A SAS
   * identity cannot connect with a certificate.
   */
  authenticateCertificate(chain: X509Certificate[], deviceId: string, moduleId?: string, now = new Date()): DeviceAuthFailure | undefined {
    const identity = this.store.get(deviceId, moduleId ?? '');
    if (!identity) return 'unknownIdentity';
    const type = identity.authenticationType ?? 'sas';
    if (type === 'sas') return 'notCertificateIdentity';
    const cert = chain[0];
    if (!isValidAt(cert, now)) return 'expired';
    if (type === 'selfSigned') {
      const presented = thumbprints(cert);
      if (![identity.primaryThumbprint, identity.secondaryThumbprint].some((t) => t !== undefined && presented.includes(t)))
        return 'thumbprintMismatch';
    } else {
      if (!chainsTo(chain, this.trustedCas, now)) return 'untrustedCertificate';
      if (commonName(cert) !== (moduleId ? `${deviceId}/${moduleId}` : deviceId)) return 'wrongCommonName';
    }
    return this.enabled(identity, deviceId, moduleId);
  }

  private enabled(identity: IdentityRecord, deviceId: string, moduleId: string | undefined): DeviceAuthFailure | undefined {
    const device = moduleId ? this.store.get(deviceId) : identity;
    return identity.status === 'enabled' && device?.status === 'enabled' ? undefined : 'disabled';
  }

  private checkServiceToken(token: SasToken): SharedAccessPolicy {
    if (isExpired(token)) throw hubErrors.unauthorized('The SharedAccessSignature has expired');
    if (!reach(this.hostName, token.resource.split('/'))) {
      throw hubErrors.unauthorized(
        `The SharedAccessSignature is for '${token.resource}', not for this hub '${this.hostName.toLowerCase()}'`,
      );
    }
    if (!token.keyName) {
      throw hubErrors.unauthorized(
        "The SharedAccessSignature names no shared access policy (skn): a device's or module's key does not open the service API",
      );
    }
    const policy = this.policy(token.keyName);
    if (!policy) throw hubErrors.unauthorized(`Unknown shared access policy '${token.keyName}'`);
    if (!policyKeys(policy).some((key) => signedWith(token, key))) {
      throw hubErrors.unauthorized(`The SharedAccessSignature is not signed with a key of policy '${policy.keyName}'`);
    }
    return policy;
  }
}

/** The rights a token put on the AMQP endpoint's $cbs may carry to its links. */
const CBS_RIGHTS: readonly Right[] = ['ServiceConnect', 'DeviceConnect'];

function policyKeys(policy: SharedAccessPolicy | undefined, right?: Right): string[] {
  if (!policy || (right && !grants(policy, right))) return [];
  return [policy.primaryKey, policy.secondaryKey];
}
