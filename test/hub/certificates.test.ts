import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import forge from 'node-forge';
import { makeCertificate } from '../../src/clients/certificates.js';
import { createRegistry } from '../../src/clients/service-clients.js';
import { loadOrCreateTls } from '../../src/hub/auth/certificates.js';
import { oid, sequence, time, tlv } from '../../src/x509/der.js';
import { startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity } from '../helpers/devices.js';

/** The certificates the hub's TLS listener presents, as a client sees them. */
function presented(t: TestHub): Promise<X509Certificate[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: t.hub.port, servername: 'localhost', ca: t.hub.tls.ca }, () => {
      const chain: X509Certificate[] = [];
      for (let c = socket.getPeerCertificate(true); c?.raw; c = c.issuerCertificate) {
        chain.push(new X509Certificate(c.raw));
        if (c.issuerCertificate === c) break; // a self-signed root points at itself
      }
      socket.destroy();
      resolve(chain);
    });
    socket.once('error', reject);
  });
}

/** An SDK device and the service SDK both work against the hub, verifying its certificate with the CA. */
async function sdksConnect(t: TestHub, deviceId: string): Promise<void> {
  const device = await openDevice(await registerIdentity(t, deviceId)); // TLS verified, SAS accepted, CONNACK
  await device.close();
  assert.equal(((await createRegistry(t.connection).get(deviceId)).responseBody as any).deviceId, deviceId);
}

test("a fresh hub's CA and server certificate are ECDSA P-256, and the SDKs verify them", async () => {
  const t = await startTestHub();
  try {
    const ca = new X509Certificate(t.hub.tls.ca);
    const [server, root] = await presented(t);
    for (const cert of [ca, server]) {
      assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
      assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    }
    assert.ok(ca.ca && ca.verify(ca.publicKey), 'a self-signed CA');
    assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey), 'the server certificate is signed by the CA');
    assert.equal(server.checkHost('localhost'), 'localhost');
    assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(server.checkIP('::1'), '::1');
    assert.equal(root.fingerprint256, ca.fingerprint256, 'the client completes the chain from its trusted CA');
    await sdksConnect(t, 'ec-device');
  } finally {
    await t.dispose();
  }
});

test("a data dir's RSA CA (made by earlier versions) is kept and signs the server certificate", async () => {
  const dataDir = tempDir();
  await (await startTestHub({ dataDir })).stop(); // a data dir a hub has run in: its database is there
  const tlsDir = join(dataDir, 'tls');
  const rsaCa = rsaCaAsEarlierVersionsMadeIt();
  writeFileSync(join(tlsDir, 'ca.pem'), rsaCa.cert);
  writeFileSync(join(tlsDir, 'ca-key.pem'), rsaCa.key, { mode: 0o600 });

  const t = await startTestHub({ dataDir });
  try {
    assert.equal(t.hub.tls.ca, rsaCa.cert, 'clients that trust the old CA keep trusting the hub');
    assert.equal(readFileSync(join(tlsDir, 'ca.pem'), 'utf8'), rsaCa.cert);
    const ca = new X509Certificate(rsaCa.cert);
    const [server] = await presented(t);
    assert.equal(ca.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(server.publicKey.asymmetricKeyType, 'ec');
    assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey), 'the RSA CA signed the server certificate');
    await sdksConnect(t, 'rsa-ca-device');
  } finally {
    await t.dispose();
  }
});

/** A self-signed RSA 2048 CA as the hub made them before it switched to P-256 (node-forge, SHA-256). */
function rsaCaAsEarlierVersionsMadeIt(): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 24 * 60 * 60 * 1000);
  const subject = [
    { name: 'commonName', value: 'iothub-tut local hub CA' },
    { name: 'organizationName', value: 'iothub-tut' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}

// The hub issues its certificates with its own DER encoder (src/x509/der.ts). These tests read
// them back with node's X509Certificate and with node-forge's ASN.1 parser (an independent reader),
// field by field: what earlier versions, built on node-forge, issued.

const { asn1 } = forge;
type Node = forge.asn1.Asn1;
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

const derOf = (pem: string) => Buffer.from(new X509Certificate(pem).raw);
const parse = (der: Buffer): Node => asn1.fromDer(der.toString('binary'), { decodeBitStrings: false } as unknown as boolean);
const items = (node: Node) => node.value as Node[];
const bytes = (node: Node) => Buffer.from(node.value as string, 'binary');
const hexOf = (node: Node) => Buffer.from(asn1.toDer(node).getBytes(), 'binary').toString('hex');

/** A short-form TLV in hex, written out by hand. */
const tlvHex = (tag: number, contentsHex: string) => Buffer.from([tag, contentsHex.length / 2]).toString('hex') + contentsHex;

/** The extensions of a certificate: OID → whether critical, and extnValue's DER in hex. */
function extensionsOf(pem: string): Map<string, { critical: boolean; value: string }> {
  const tbs = items(items(parse(derOf(pem)))[0]);
  const wrapper = tbs.find((n) => n.tagClass === asn1.Class.CONTEXT_SPECIFIC && n.type === 3)!;
  return new Map(
    items(items(wrapper)[0]).map((extension) => {
      const [id, ...rest] = items(extension);
      const critical = rest.length === 2 && bytes(rest[0])[0] === 0xff;
      return [asn1.derToOid(id.value as string), { critical, value: bytes(rest[rest.length - 1]).toString('hex') }];
    }),
  );
}

/** SHA-1 of a certificate's subjectPublicKey bits: RFC 5280's key identifier, method 1. */
function keyIdOf(pem: string): string {
  const spki = parse(Buffer.from(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })));
  return createHash('sha1')
    .update(bytes(items(spki)[1]).subarray(1))
    .digest('hex');
}

test('a new CA and its server certificate hold every field the hub has always issued', () => {
  const before = Date.now();
  const tls = loadOrCreateTls(undefined, ['my-host']);
  const after = Date.now();
  const ca = new X509Certificate(tls.ca);
  const server = new X509Certificate(tls.cert);

  // Names: CN then O, each a UTF8String in a set of its own.
  assert.equal(ca.subject, 'CN=iothub-tut local hub CA\nO=iothub-tut');
  assert.equal(ca.issuer, ca.subject);
  assert.equal(server.subject, 'CN=localhost\nO=iothub-tut');
  assert.equal(server.issuer, ca.subject);
  const subjectName = items(items(parse(derOf(tls.cert)))[0])[5];
  for (const rdn of items(subjectName)) {
    assert.equal(items(rdn).length, 1);
    assert.equal(items(items(rdn)[0])[1].type, asn1.Type.UTF8);
  }

  // Version 3, a 16-byte positive serial number, ECDSA P-256 keys and SHA-256 ECDSA signatures.
  for (const cert of [ca, server]) {
    const [tbs, algorithm] = items(parse(Buffer.from(cert.raw)));
    assert.equal(bytes(items(items(tbs)[0])[0])[0], 2, 'v3');
    assert.match(cert.serialNumber, /^01[0-9A-F]{30}$/);
    assert.equal(hexOf(algorithm), '300a06082a8648ce3d040302', 'ecdsa-with-SHA256, no parameters');
    assert.equal(hexOf(items(tbs)[2]), hexOf(algorithm));
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  }
  assert.notEqual(ca.serialNumber, server.serialNumber);
  assert.ok(ca.verify(ca.publicKey), 'the CA is self-signed');
  assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey), 'the CA signed the server certificate');

  // Valid from an hour ago (whole seconds), for ten years (the CA) and 825 days (the server).
  const within = (date: string, from: number, to: number) => {
    const ms = Date.parse(date);
    assert.ok(
      ms >= Math.floor(from / 1000) * 1000 && ms <= to,
      `${date} within [${new Date(from).toISOString()}, ${new Date(to).toISOString()}]`,
    );
  };
  for (const cert of [ca, server]) within(cert.validFrom, before - HOUR, after - HOUR);
  within(ca.validTo, before + 3650 * DAY, after + 3650 * DAY);
  within(server.validTo, before + 825 * DAY, after + 825 * DAY);

  // The CA: basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign (both critical), its key identifier.
  assert.ok(ca.ca);
  assert.equal(ca.keyUsage, undefined, 'no extended key usage');
  assert.deepEqual(
    extensionsOf(tls.ca),
    new Map([
      ['2.5.29.19', { critical: true, value: '30030101ff' }],
      ['2.5.29.15', { critical: true, value: '03020106' }],
      ['2.5.29.14', { critical: false, value: `0414${keyIdOf(tls.ca)}` }],
    ]),
  );

  // The server: CA:FALSE, keyUsage digitalSignature (critical), serverAuth, the CA's key identifier,
  // and its names: localhost, the extra ones, 127.0.0.1 and ::1.
  assert.ok(!server.ca);
  assert.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  assert.equal(server.subjectAltName, 'DNS:localhost, DNS:my-host, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  const generalName = (tag: number, value: Buffer) => tlvHex(tag, value.toString('hex'));
  const san = tlvHex(
    0x30,
    generalName(0x82, Buffer.from('localhost')) + // [2] dNSName
      generalName(0x82, Buffer.from('my-host')) +
      generalName(0x87, Buffer.from([127, 0, 0, 1])) + // [7] iPAddress
      generalName(0x87, Buffer.from([...new Array(15).fill(0), 1])),
  );
  assert.deepEqual(
    extensionsOf(tls.cert),
    new Map([
      ['2.5.29.19', { critical: false, value: '3000' }],
      ['2.5.29.15', { critical: true, value: '03020780' }],
      ['2.5.29.37', { critical: false, value: '300a06082b06010505070301' }],
      ['2.5.29.35', { critical: false, value: `30168014${keyIdOf(tls.ca)}` }],
      ['2.5.29.17', { critical: false, value: san }],
    ]),
  );
  assert.equal(server.checkHost('my-host'), 'my-host');
  assert.equal(server.checkIP('::1'), '::1');
});

test('a device certificate (create-device --x509, a test fleet): P-256, CN alone, clientAuth; a CA of its own signs others', () => {
  const before = Date.now();
  const ca = makeCertificate({ commonName: 'my fleet CA', isCa: true });
  const device = makeCertificate({ commonName: 'fleet-1', issuer: ca });
  const self = makeCertificate({ commonName: 'self-1', validDays: { from: -30, to: -1 } });
  const [caCert, deviceCert, selfCert] = [ca, device, self].map((c) => new X509Certificate(c.cert));
  for (const [made, cert] of [
    [ca, caCert],
    [device, deviceCert],
    [self, selfCert],
  ] as const) {
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(made.sha1, cert.fingerprint.replace(/:/g, ''));
    assert.equal(made.sha256, cert.fingerprint256.replace(/:/g, ''));
    assert.ok(cert.checkPrivateKey(createPrivateKey(made.key)));
  }
  assert.equal(deviceCert.subject, 'CN=fleet-1');
  assert.equal(deviceCert.issuer, 'CN=my fleet CA');
  assert.ok(caCert.ca && !deviceCert.ca);
  assert.ok(deviceCert.checkIssued(caCert) && deviceCert.verify(caCert.publicKey), 'the CA signed it');
  assert.ok(selfCert.verify(selfCert.publicKey), 'self-signed');
  assert.deepEqual(deviceCert.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth');
  assert.deepEqual(
    extensionsOf(device.cert),
    new Map([
      ['2.5.29.19', { critical: false, value: '3000' }],
      ['2.5.29.15', { critical: true, value: '03020780' }],
      ['2.5.29.37', { critical: false, value: '300a06082b06010505070302' }],
      ['2.5.29.35', { critical: false, value: `30168014${keyIdOf(ca.cert)}` }],
    ]),
  );
  // A year from a day ago by default; validDays may place it in the past.
  assert.ok(Math.abs(Date.parse(deviceCert.validTo) - (before + 365 * DAY)) < 5_000, deviceCert.validTo);
  assert.ok(Date.parse(selfCert.validTo) < before - DAY + 5_000, selfCert.validTo);
});

test('PEM as earlier versions wrote it: 64-character lines, CRLF', () => {
  const { ca, cert } = loadOrCreateTls(undefined);
  for (const pem of [ca, cert]) {
    assert.match(pem, /^-----BEGIN CERTIFICATE-----\r\n([A-Za-z0-9+/=]{64}\r\n)*[A-Za-z0-9+/=]{1,64}\r\n-----END CERTIFICATE-----\r\n$/);
    assert.equal(pem, forge.pem.encode({ type: 'CERTIFICATE', body: derOf(pem).toString('binary') }));
  }
});

test("DER encodings match node-forge's: times either side of 2050, long lengths, multi-byte OID arcs", () => {
  const forgeTime = (ms: number) =>
    ms < Date.UTC(2050, 0, 1)
      ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(new Date(ms)))
      : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(new Date(ms)));
  for (const ms of [
    Date.UTC(2026, 11, 2, 6, 5, 4),
    Date.UTC(2049, 11, 31, 23, 59, 59, 999),
    Date.UTC(2050, 0, 1),
    Date.UTC(2099, 6, 1, 12),
  ])
    assert.equal(time(ms).toString('hex'), hexOf(forgeTime(ms)), new Date(ms).toISOString());
  assert.equal(time(Date.UTC(2050, 0, 1)).toString('latin1'), '\x18\x0f20500101000000Z', 'GeneralizedTime from 2050');

  for (const id of ['2.5.4.3', '1.2.840.10045.4.3.2', '1.3.6.1.4.1.311.21.7', '2.999.16384'])
    assert.equal(
      oid(id).toString('hex'),
      '06' +
        Buffer.from([asn1.oidToDer(id).length()]).toString('hex') +
        Buffer.from(asn1.oidToDer(id).getBytes(), 'binary').toString('hex'),
    );

  for (const length of [0, 127, 128, 255, 256, 70_000]) {
    const contents = Buffer.alloc(length, 7);
    const theirs = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, contents.toString('binary'));
    assert.equal(tlv(0x04, contents).toString('hex'), hexOf(theirs), `length ${length}`);
  }
  assert.equal(sequence(tlv(0x05)).toString('hex'), '30020500');
});
