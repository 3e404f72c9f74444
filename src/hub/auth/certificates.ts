import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

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

// node-forge signs only with RSA: it assembles the DER here, and node:crypto signs it.
const { asn1, pki } = forge;
const { UNIVERSAL, CONTEXT_SPECIFIC } = asn1.Class;
const der = (node: forge.asn1.Asn1) => Buffer.from(asn1.toDer(node).getBytes(), 'binary');
// Bit strings kept as bytes: a public key's bits must not be mistaken for nested ASN.1.
const fromDer = (bytes: Buffer) => asn1.fromDer(bytes.toString('binary'), { decodeBitStrings: false } as unknown as boolean);
const sequence = (...items: forge.asn1.Asn1[]) => asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const oid = (id: string) => asn1.create(UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

function issue(options: { commonName: string; isCa: boolean; names?: string[]; issuer?: { cert: string; key: string } }): {
  cert: string;
  key: string;
} {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signer: KeyObject = options.issuer ? createPrivateKey(options.issuer.key) : privateKey;
  // RFC 5758: ECDSA's AlgorithmIdentifier has no parameters; RSA's has NULL.
  const algorithm =
    signer.asymmetricKeyType === 'ec'
      ? sequence(oid(ECDSA_WITH_SHA256))
      : sequence(oid(pki.oids.sha256WithRSAEncryption), asn1.create(UNIVERSAL, asn1.Type.NULL, false, ''));
  const spki = fromDer(publicKey.export({ type: 'spki', format: 'der' }));
  const subject = pki.distinguishedNameToAsn1({
    attributes: [
      { type: pki.oids.commonName, value: options.commonName, valueTagClass: asn1.Type.UTF8 },
      { type: pki.oids.organizationName, value: 'iothub-tut', valueTagClass: asn1.Type.UTF8 },
    ] as unknown as forge.pki.CertificateField[],
  });
  // The issuer's name and key exactly as its own certificate encodes them (TBSCertificate's 6th and 7th fields), RSA or EC.
  const issuerTbs = options.issuer && (tbsOf(options.issuer.cert).value as forge.asn1.Asn1[]);
  const issuerName = issuerTbs ? issuerTbs[5] : subject;
  const now = Date.now();
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  const time = (ms: number) =>
    ms < Date.UTC(2050, 0, 1)
      ? asn1.create(UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(new Date(ms)))
      : asn1.create(UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(new Date(ms)));
  const days = options.isCa ? 10 * 365 : 825;

  // forge fills in the extensions' values (key usage bits, alternative names) on a certificate object.
  const holder = pki.createCertificate();
  holder.setExtensions(
    options.isCa
      ? [
          { name: 'basicConstraints', cA: true, critical: true },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
          // RFC 5280's method 1: SHA-1 of the public key's bits.
          { name: 'subjectKeyIdentifier', value: asn1.create(UNIVERSAL, asn1.Type.OCTETSTRING, false, keyIdentifier(spki)) },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, critical: true },
          { name: 'extKeyUsage', serverAuth: true },
          // Strict verifiers (OpenSSL's X509_STRICT, Python 3.13's default) want it; the CA's key identifier, computed as above.
          ...(issuerTbs ? [{ name: 'authorityKeyIdentifier', keyIdentifier: keyIdentifier(issuerTbs[6]) }] : []),
          {
            name: 'subjectAltName',
            altNames: [...(options.names ?? []).map((value) => ({ type: 2, value })), ...SERVER_IPS.map((ip) => ({ type: 7, ip }))],
          },
        ],
  );
  const extensions = (holder.extensions as Array<{ id: string; critical?: boolean; value: forge.asn1.Asn1 | string }>).map((e) =>
    sequence(
      oid(e.id),
      ...(e.critical ? [asn1.create(UNIVERSAL, asn1.Type.BOOLEAN, false, '\xff')] : []),
      asn1.create(UNIVERSAL, asn1.Type.OCTETSTRING, false, typeof e.value === 'string' ? e.value : asn1.toDer(e.value).getBytes()),
    ),
  );

  const tbs = sequence(
    asn1.create(CONTEXT_SPECIFIC, 0, true, [asn1.create(UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(2).getBytes())]), // v3
    asn1.create(UNIVERSAL, asn1.Type.INTEGER, false, '\x01' + randomBytes(15).toString('binary')), // positive, unique
    algorithm,
    issuerName,
    sequence(time(now - 60 * 60 * 1000), time(now + days * 24 * 60 * 60 * 1000)),
    subject,
    spki,
    asn1.create(CONTEXT_SPECIFIC, 3, true, [sequence(...extensions)]),
  );
  const signature = sign('sha256', der(tbs), signer); // ECDSA: DER (r, s), as X.509 wants
  const cert = sequence(tbs, algorithm, asn1.create(UNIVERSAL, asn1.Type.BITSTRING, false, '\x00' + signature.toString('binary')));
  return {
    cert: forge.pem.encode({ type: 'CERTIFICATE', body: asn1.toDer(cert).getBytes() }),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

function tbsOf(pem: string): forge.asn1.Asn1 {
  return (fromDer(Buffer.from(forge.pem.decode(pem)[0].body, 'binary')).value as forge.asn1.Asn1[])[0];
}

/** RFC 5280's key identifier, method 1: SHA-1 of the subjectPublicKey's bits (as forge made the older RSA CAs'). */
function keyIdentifier(spki: forge.asn1.Asn1): string {
  const bits = ((spki.value as forge.asn1.Asn1[])[1].value as string).slice(1); // after the unused-bits byte
  return createHash('sha1').update(bits, 'binary').digest('binary');
}
