import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCertificate } from '../../x509/issue.js';
import { STORAGE_CERT_FILE, STORAGE_KEY_FILE } from '../defaults.js';

export interface TlsMaterial {
  /** PEM of the hub's own CA: what clients must trust. */
  ca: string;
  caFile?: string;
  /** The server certificate alone: clients have the CA as their trust anchor, so the chain would only add bytes and parsing to every handshake. */
  cert: string;
  key: string;
}

const SERVER_NAMES = ['localhost'];
const SERVER_IPS = ['127.0.0.1', '::1'];
const ORGANIZATION = 'iothub-tut';
const HOUR_MS = 60 * 60 * 1000;
/** From an hour ago (clocks differ a little) for `days`. */
const validFor = (days: number) => ({ notBefore: Date.now() - HOUR_MS, notAfter: Date.now() + days * 24 * HOUR_MS });

/**
 * The hub's CA is made once and kept in the data dir (clients trust it once); the server
 * certificate for localhost, 127.0.0.1 and ::1 is re-issued from it at each start.
 * Keys are ECDSA P-256: a handshake costs the hub less CPU than with RSA 2048 (BENCHMARKS.md). A data
 * dir's older RSA CA is kept (clients trust it) and signs the P-256 server certificate.
 */
export function loadOrCreateTls(dir: string | undefined, extraNames: string[] = []): TlsMaterial {
  if (dir) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  const file = (name: string) => (dir ? join(dir, name) : undefined);
  const caCertFile = file('ca.pem');
  const caKeyFile = file('ca-key.pem');

  let ca: { cert: string; key: string };
  if (caCertFile && caKeyFile && existsSync(caCertFile) && existsSync(caKeyFile)) {
    chmodSync(caKeyFile, 0o600); // writeFileSync's mode applies only to a new file
    ca = { cert: readFileSync(caCertFile, 'utf8'), key: readFileSync(caKeyFile, 'utf8') };
  } else {
    ca = issueCertificate({ commonName: 'iothub-tut local hub CA', organization: ORGANIZATION, isCa: true, ...validFor(10 * 365) });
    if (caCertFile && caKeyFile) {
      writeFileSync(caKeyFile, ca.key, { mode: 0o600 });
      writeFileSync(caCertFile, ca.cert, { mode: 0o644 });
    }
  }
  const server = issueCertificate({
    commonName: 'localhost',
    organization: ORGANIZATION,
    isCa: false,
    issuer: ca,
    usage: 'serverAuth',
    dnsNames: [...SERVER_NAMES, ...extraNames],
    ipAddresses: SERVER_IPS,
    ...validFor(825),
  });
  return { ca: ca.cert, caFile: caCertFile, cert: server.cert, key: server.key };
}

/**
 * Writes a certificate for localhost, 127.0.0.1 and ::1, issued by the hub's CA, and its key, for a
 * storage emulator to serve (Azurite's --cert and --key): devices that trust the hub's CA upload to
 * it over https, as device SDKs do. Written once and kept, so that a running emulator's stays current.
 */
export function writeStorageCertificate(dir: string, tls: TlsMaterial): { certFile: string; keyFile: string } {
  const certFile = join(dir, STORAGE_CERT_FILE);
  const keyFile = join(dir, STORAGE_KEY_FILE);
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    writeFileSync(keyFile, tls.key, { mode: 0o600 });
    writeFileSync(certFile, tls.cert, { mode: 0o644 });
  }
  return { certFile, keyFile };
}

/** A --trusted-ca that is not a CA certificate. */
export class TrustedCaError extends Error {}

/**
 * The CA certificates a hub trusts for CA-signed device certificates, from PEM texts (each may hold
 * several). Anything that is not a CA certificate is refused with a message that says which.
 */
export function parseTrustedCas(pems: string[], names = pems.map((_, i) => `trusted CA ${i + 1}`)): X509Certificate[] {
  return pems.flatMap((pem, i) => {
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new TrustedCaError(`${names[i]} holds no PEM certificate`);
    return blocks.map((block) => {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(block);
      } catch {
        throw new TrustedCaError(`${names[i]} is not a valid X.509 certificate`);
      }
      if (!cert.ca)
        throw new TrustedCaError(`${names[i]} (${cert.subject.replace(/\n/g, ', ')}) is not a CA certificate (basicConstraints CA:TRUE)`);
      return cert;
    });
  });
}
