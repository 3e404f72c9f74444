import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

export interface TlsMaterial {
  /** PEM of the hub's own CA: what clients must trust. */
  ca: string;
  caFile?: string;
  cert: string;
  key: string;
}

const SERVER_NAMES = ['localhost'];
const SERVER_IPS = ['127.0.0.1', '::1'];

/**
 * The hub's CA is made once and kept in the data dir (clients trust it once); the server
 * certificate for localhost, 127.0.0.1 and ::1 is re-issued from it when missing.
 * Keys come from node:crypto (fast, native); node-forge only assembles and signs the X.509.
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
    ca = issue({ commonName: 'iothub-tut local hub CA', isCa: true });
    if (caCertFile && caKeyFile) {
      writeFileSync(caKeyFile, ca.key, { mode: 0o600 });
      writeFileSync(caCertFile, ca.cert, { mode: 0o644 });
    }
  }
  const server = issue({ commonName: 'localhost', isCa: false, names: [...SERVER_NAMES, ...extraNames], issuer: ca });
  return { ca: ca.cert, caFile: caCertFile, cert: server.cert + ca.cert, key: server.key };
}

function issue(options: {
  commonName: string;
  isCa: boolean;
  names?: string[];
  issuer?: { cert: string; key: string };
}): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + (options.isCa ? 10 * 365 : 825) * 24 * 60 * 60 * 1000);
  const subject = [{ name: 'commonName', value: options.commonName }, { name: 'organizationName', value: 'iothub-tut' }];
  cert.setSubject(subject);
  const issuerCert = options.issuer ? forge.pki.certificateFromPem(options.issuer.cert) : undefined;
  cert.setIssuer(issuerCert ? issuerCert.subject.attributes : subject);
  cert.setExtensions(
    options.isCa
      ? [
          { name: 'basicConstraints', cA: true, critical: true },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
          { name: 'subjectKeyIdentifier' },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
          { name: 'extKeyUsage', serverAuth: true },
          {
            name: 'subjectAltName',
            altNames: [
              ...(options.names ?? []).map((value) => ({ type: 2, value })),
              ...SERVER_IPS.map((ip) => ({ type: 7, ip })),
            ],
          },
        ],
  );
  const signingKey = forge.pki.privateKeyFromPem(options.issuer?.key ?? privateKey);
  cert.sign(signingKey as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}
