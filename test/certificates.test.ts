import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import forge from 'node-forge';
import { createRegistry } from '../src/clients/service-clients.js';
import { startTestHub, tempDir, type TestHub } from './helpers/hub.js';
import { openDevice, registerIdentity } from './helpers/devices.js';

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
