import { createHash, generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';

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
 * An RSA 2048 certificate made with node-forge (which signs only with RSA; the key by node:crypto,
 * which is quicker): self-signed, or issued by `issuer`; a CA when `isCa`. A device's certificate has
 * its device id as CN, as IoT Hub requires. `validDays` may place its validity in the past.
 */
export function makeCertificate(options: {
  commonName: string;
  issuer?: Certificate;
  isCa?: boolean;
  validDays?: { from: number; to: number };
}): Certificate {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01' + forge.util.bytesToHex(forge.random.getBytesSync(8));
  const { from, to } = options.validDays ?? { from: -1, to: 365 };
  cert.validity.notBefore = new Date(Date.now() + from * DAY_MS);
  cert.validity.notAfter = new Date(Date.now() + to * DAY_MS);
  const subject = [{ name: 'commonName', value: options.commonName }];
  cert.setSubject(subject);
  const issuer = options.issuer && forge.pki.certificateFromPem(options.issuer.cert);
  cert.setIssuer(issuer ? issuer.subject.attributes : subject);
  cert.setExtensions(
    options.isCa
      ? [
          { name: 'basicConstraints', cA: true, critical: true },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', clientAuth: true },
        ],
  );
  cert.sign(options.issuer ? forge.pki.privateKeyFromPem(options.issuer.key) : key, forge.md.sha256.create());
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  const thumbprint = (algorithm: string) => createHash(algorithm).update(der).digest('hex').toUpperCase();
  return { cert: forge.pki.certificateToPem(cert), key: keyPem, sha1: thumbprint('sha1'), sha256: thumbprint('sha256') };
}
