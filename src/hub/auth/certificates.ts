import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIPv4 } from 'node:net';
import {
  TAG,
  TRUE,
  bitString,
  children,
  contextTag,
  integer,
  octetString,
  oid,
  readElement,
  sequence,
  set,
  time,
  tlv,
  toPem,
  utf8,
} from './der.js';

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
    ca = issue({ commonName: 'iothub-tut local hub CA', isCa: true });
    if (caCertFile && caKeyFile) {
      writeFileSync(caKeyFile, ca.key, { mode: 0o600 });
      writeFileSync(caCertFile, ca.cert, { mode: 0o644 });
    }
  }
  const server = issue({ commonName: 'localhost', isCa: false, names: [...SERVER_NAMES, ...extraNames], issuer: ca });
  return { ca: ca.cert, caFile: caCertFile, cert: server.cert, key: server.key };
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

// The certificates are assembled here, field by field, with a small DER encoder (der.ts); node:crypto
// makes the keys and signs.
const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
};
// KeyUsage bits (RFC 5280 4.2.1.3) as one byte of a BIT STRING, with its count of unused trailing bits.
const KEY_USAGE_DIGITAL_SIGNATURE = bitString(Buffer.from([0x80]), 7);
const KEY_USAGE_CERT_AND_CRL_SIGN = bitString(Buffer.from([0x06]), 1);

function issue(options: { commonName: string; isCa: boolean; names?: string[]; issuer?: { cert: string; key: string } }): {
  cert: string;
  key: string;
} {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signer: KeyObject = options.issuer ? createPrivateKey(options.issuer.key) : privateKey;
  // RFC 5758: ECDSA's AlgorithmIdentifier has no parameters; RSA's has NULL.
  const algorithm =
    signer.asymmetricKeyType === 'ec' ? sequence(oid(OID.ecdsaWithSha256)) : sequence(oid(OID.sha256WithRsa), tlv(TAG.NULL));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // Each attribute in a set of its own, UTF8String, as earlier versions (node-forge) encoded them.
  const subject = sequence(
    set(sequence(oid(OID.commonName), utf8(options.commonName))),
    set(sequence(oid(OID.organizationName), utf8('iothub-tut'))),
  );
  // The issuer's name and key exactly as its own certificate encodes them (TBSCertificate's 6th and 7th fields), RSA or EC.
  const issuerTbs = options.issuer && children(children(readElement(new X509Certificate(options.issuer.cert).raw))[0]);
  const issuerName = issuerTbs ? issuerTbs[5].bytes : subject;
  const now = Date.now();
  const days = options.isCa ? 10 * 365 : 825;

  const extension = (id: string, value: Buffer, critical = false) => sequence(oid(id), ...(critical ? [TRUE] : []), octetString(value));
  const extensions = options.isCa
    ? [
        extension(OID.basicConstraints, sequence(TRUE), true),
        extension(OID.keyUsage, KEY_USAGE_CERT_AND_CRL_SIGN, true),
        // RFC 5280's method 1: SHA-1 of the public key's bits.
        extension(OID.subjectKeyIdentifier, octetString(keyIdentifier(spki))),
      ]
    : [
        extension(OID.basicConstraints, sequence()),
        extension(OID.keyUsage, KEY_USAGE_DIGITAL_SIGNATURE, true),
        extension(OID.extKeyUsage, sequence(oid(OID.serverAuth))),
        // Strict verifiers (OpenSSL's X509_STRICT, Python 3.13's default) want it; the CA's key identifier, computed as above.
        ...(issuerTbs
          ? [extension(OID.authorityKeyIdentifier, sequence(tlv(contextTag(0, false), keyIdentifier(issuerTbs[6].bytes))))]
          : []),
        extension(
          OID.subjectAltName,
          sequence(
            ...(options.names ?? []).map((name) => tlv(contextTag(2, false), Buffer.from(name, 'ascii'))), // dNSName
            ...SERVER_IPS.map((ip) => tlv(contextTag(7, false), ipAddressBytes(ip))), // iPAddress
          ),
        ),
      ];

  const tbs = sequence(
    tlv(contextTag(0, true), integer(Buffer.from([2]))), // v3
    integer(Buffer.concat([Buffer.from([1]), randomBytes(15)])), // positive, unique
    algorithm,
    issuerName,
    sequence(time(now - 60 * 60 * 1000), time(now + days * 24 * 60 * 60 * 1000)),
    subject,
    spki,
    tlv(contextTag(3, true), sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, signer); // ECDSA: DER (r, s), as X.509 wants
  return {
    cert: toPem('CERTIFICATE', sequence(tbs, algorithm, bitString(signature))),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/** RFC 5280's key identifier, method 1: SHA-1 of the subjectPublicKey's bits (as forge made the older RSA CAs'). */
function keyIdentifier(spki: Buffer): Buffer {
  const bits = children(readElement(spki))[1].contents.subarray(1); // after the unused-bits byte
  return createHash('sha1').update(bits).digest();
}

/** An IP address as GeneralName's iPAddress holds it: 4 bytes, or 16 for IPv6 ('::' expanded). */
function ipAddressBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head, tail = ''] = ip.split('::');
  const groups = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const [before, after] = [groups(head), groups(tail)];
  const all = [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
  const bytes = Buffer.alloc(16);
  all.forEach((group, i) => bytes.writeUInt16BE(group, i * 2));
  return bytes;
}
