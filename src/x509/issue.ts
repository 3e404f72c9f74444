import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
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

// X.509 certificates assembled field by field with a small DER encoder (der.ts); node:crypto makes the
// keys (ECDSA P-256) and signs. Both halves use it: the hub for its CA and server certificate
// (hub/auth/certificates.ts), the client side for devices' certificates (clients/certificates.ts).

export interface IssueOptions {
  commonName: string;
  /** The subject's O, after its CN. */
  organization?: string;
  isCa: boolean;
  /** Signs the certificate and names its issuer (PEM; its key RSA or EC); self-signed without. */
  issuer?: { cert: string; key: string };
  notBefore: number;
  notAfter: number;
  /** A leaf's extended key usage. */
  usage?: 'serverAuth' | 'clientAuth';
  /** A server certificate's subjectAltName: DNS names and IP addresses. */
  dnsNames?: string[];
  ipAddresses?: string[];
}

export interface Issued {
  cert: string;
  /** PKCS #8 PEM. */
  key: string;
  der: Buffer;
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
};
// KeyUsage bits (RFC 5280 4.2.1.3) as one byte of a BIT STRING, with its count of unused trailing bits.
const KEY_USAGE_DIGITAL_SIGNATURE = bitString(Buffer.from([0x80]), 7);
const KEY_USAGE_CERT_AND_CRL_SIGN = bitString(Buffer.from([0x06]), 1);

/** A new P-256 key and its certificate: a CA's, or a leaf's for a server or a client. */
export function issueCertificate(options: IssueOptions): Issued {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signer: KeyObject = options.issuer ? createPrivateKey(options.issuer.key) : privateKey;
  // RFC 5758: ECDSA's AlgorithmIdentifier has no parameters; RSA's has NULL.
  const algorithm =
    signer.asymmetricKeyType === 'ec' ? sequence(oid(OID.ecdsaWithSha256)) : sequence(oid(OID.sha256WithRsa), tlv(TAG.NULL));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // Each attribute in a set of its own, UTF8String, as earlier versions (node-forge) encoded them.
  const subject = sequence(
    set(sequence(oid(OID.commonName), utf8(options.commonName))),
    ...(options.organization ? [set(sequence(oid(OID.organizationName), utf8(options.organization)))] : []),
  );
  // The issuer's name and key exactly as its own certificate encodes them (TBSCertificate's 6th and 7th fields), RSA or EC.
  const issuerTbs = options.issuer && children(children(readElement(new X509Certificate(options.issuer.cert).raw))[0]);
  const issuerName = issuerTbs ? issuerTbs[5].bytes : subject;

  const extension = (id: string, value: Buffer, critical = false) => sequence(oid(id), ...(critical ? [TRUE] : []), octetString(value));
  // Strict verifiers (OpenSSL's X509_STRICT, Python 3.13's default) want it: the issuer's key identifier, computed as below.
  const authorityKeyId = issuerTbs
    ? [extension(OID.authorityKeyIdentifier, sequence(tlv(contextTag(0, false), keyIdentifier(issuerTbs[6].bytes))))]
    : [];
  const names = [
    ...(options.dnsNames ?? []).map((name) => tlv(contextTag(2, false), Buffer.from(name, 'ascii'))), // dNSName
    ...(options.ipAddresses ?? []).map((ip) => tlv(contextTag(7, false), ipAddressBytes(ip))), // iPAddress
  ];
  const extensions = options.isCa
    ? [
        extension(OID.basicConstraints, sequence(TRUE), true),
        extension(OID.keyUsage, KEY_USAGE_CERT_AND_CRL_SIGN, true),
        // RFC 5280's method 1: SHA-1 of the public key's bits.
        extension(OID.subjectKeyIdentifier, octetString(keyIdentifier(spki))),
        ...authorityKeyId,
      ]
    : [
        extension(OID.basicConstraints, sequence()),
        extension(OID.keyUsage, KEY_USAGE_DIGITAL_SIGNATURE, true),
        ...(options.usage ? [extension(OID.extKeyUsage, sequence(oid(OID[options.usage])))] : []),
        ...authorityKeyId,
        ...(names.length > 0 ? [extension(OID.subjectAltName, sequence(...names))] : []),
      ];

  const tbs = sequence(
    tlv(contextTag(0, true), integer(Buffer.from([2]))), // v3
    integer(Buffer.concat([Buffer.from([1]), randomBytes(15)])), // positive, unique
    algorithm,
    issuerName,
    sequence(time(options.notBefore), time(options.notAfter)),
    subject,
    spki,
    tlv(contextTag(3, true), sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, signer); // ECDSA: DER (r, s), as X.509 wants
  const der = sequence(tbs, algorithm, bitString(signature));
  return { cert: toPem('CERTIFICATE', der), key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, der };
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
