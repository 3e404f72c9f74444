import { createHash } from 'node:crypto';
import { issueCertificate } from '../x509/issue.js';

/** A certificate and its private key (PEM), with the thumbprints a registry identity names it by. */
export interface Certificate {
  cert: string;
  key: string;
  /** Upper-case hex, as IoT Hub shows thumbprints. */
  sha1: string;
  sha256: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * An ECDSA P-256 certificate for a device (client authentication), or a CA when `isCa`: self-signed,
 * or issued by `issuer`. A device's certificate has its device id as CN, as IoT Hub requires.
 * `validDays` may place its validity in the past.
 */
export function makeCertificate(options: {
  commonName: string;
  issuer?: Certificate;
  isCa?: boolean;
  validDays?: { from: number; to: number };
}): Certificate {
  const { from, to } = options.validDays ?? { from: -1, to: 365 };
  const { cert, key, der } = issueCertificate({
    commonName: options.commonName,
    isCa: options.isCa ?? false,
    issuer: options.issuer,
    notBefore: Date.now() + from * DAY_MS,
    notAfter: Date.now() + to * DAY_MS,
    usage: 'clientAuth', // a leaf's; a CA has none
  });
  const thumbprint = (algorithm: string) => createHash(algorithm).update(der).digest('hex').toUpperCase();
  return { cert, key, sha1: thumbprint('sha1'), sha256: thumbprint('sha256') };
}
