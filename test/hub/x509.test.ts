import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry } from '../../src/clients/service-clients.js';
import { parseConnection } from '../../src/clients/connection-string.js';
import { CliProcess, runCli } from '../helpers/cli.js';
import { connackOf, rawConnect } from '../helpers/mqtt.js';
import { until } from '../helpers/devices.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { makeCertificate, type Certificate as TestCertificate } from '../../src/clients/certificates.js';

/**
 * The official device client over MQTT with a client certificate (the SDK's x509 options). The SDK
 * takes no GatewayHostName from an x509 connection string, so the test hub's ephemeral port goes in
 * through the SDK's own X509AuthenticationProvider (a hub on its default port 8883 needs nothing).
 */
async function certificateClient(t: TestHub, deviceId: string, cert: TestCertificate): Promise<deviceSdk.Client> {
  const credentials = { host: 'localhost', deviceId, gatewayHostName: `localhost:${t.hub.port}` };
  const client = deviceSdk.Client.fromAuthenticationProvider(
    new deviceSdk.X509AuthenticationProvider(credentials as any),
    mqttTransport.Mqtt,
  );
  await client.setOptions({ cert: cert.cert, key: cert.key, ca: t.hub.tls.ca });
  return client;
}

/** A raw MQTT CONNECT with a client certificate and no password: the client, or the CONNACK code of a refusal. */
function rawCertificateConnect(t: TestHub, deviceId: string, cert: TestCertificate): Promise<mqtt.MqttClient | number> {
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: t.hub.port,
    ca: t.hub.tls.ca,
    servername: 'localhost',
    cert: cert.cert,
    key: cert.key,
    clientId: deviceId,
    username: `localhost/${deviceId}/?api-version=2021-04-12`,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
  } as mqtt.IClientOptions);
  return connackOf(client);
}

describe('X.509 identities: azure-iothub Registry and azure-iot-device over MQTT with client certificates', () => {
  let t: TestHub;
  let registry: ReturnType<typeof createRegistry>;
  let trustedCa: TestCertificate;
  let untrustedCa: TestCertificate;
  const open: deviceSdk.Client[] = [];
  before(async () => {
    trustedCa = makeCertificate({ commonName: 'iothub-tut test root CA', isCa: true });
    untrustedCa = makeCertificate({ commonName: 'someone else CA', isCa: true });
    t = await startTestHub({ trustedCas: [trustedCa.cert] });
    registry = createRegistry(t.connection);
  });
  after(async () => {
    await Promise.all(open.map((c) => c.close().catch(() => undefined)));
    await t.dispose();
  });

  test('the registry stores selfSigned thumbprints and certificateAuthority as such, with no keys', async () => {
    const sha1 = 'ab'.repeat(20);
    const sha256 = 'CD'.repeat(32);
    const created = (
      await registry.create({
        deviceId: 'x509-reg',
        authentication: { x509Thumbprint: { primaryThumbprint: sha1, secondaryThumbprint: sha256 } },
      })
    ).responseBody;
    assert.equal(
      (created.authentication as any).type,
      'selfSigned',
      "a thumbprint without a type is 'selfSigned', as the SDK and IoT Hub read it",
    );
    assert.deepEqual(created.authentication!.x509Thumbprint, { primaryThumbprint: sha1.toUpperCase(), secondaryThumbprint: sha256 });
    assert.deepEqual(created.authentication!.symmetricKey, { primaryKey: null, secondaryKey: null });
    const twin = (await registry.getTwin('x509-reg')).responseBody as any;
    assert.equal(twin.authenticationType, 'selfSigned');
    assert.equal(twin.x509Thumbprint.primaryThumbprint, sha1.toUpperCase());

    const ca = (await registry.create({ deviceId: 'x509-ca-reg', authentication: { type: 'certificateAuthority' } } as any)).responseBody;
    assert.equal((ca.authentication as any).type, 'certificateAuthority');
    assert.deepEqual(ca.authentication!.symmetricKey, { primaryKey: null, secondaryKey: null });
    assert.equal(((await registry.get('x509-ca-reg')).responseBody.authentication as any).type, 'certificateAuthority');

    const toSas = (await registry.update({ deviceId: 'x509-ca-reg', authentication: { type: 'sas' } } as any)).responseBody;
    assert.equal((toSas.authentication as any).type, 'sas');
    assert.equal(Buffer.from(toSas.authentication!.symmetricKey!.primaryKey, 'base64').length, 32, 'turning to SAS generates keys');
    const malformed = await registry
      .create({ deviceId: 'x509-bad', authentication: { x509Thumbprint: { primaryThumbprint: 'xyz' } } })
      .then(
        () => undefined,
        (e: Error) => e,
      );
    assert.equal(malformed?.constructor.name, 'ArgumentError');
  });

  test('a self-signed device (SHA-1 or SHA-256 thumbprint) and a CA-signed device connect and send', async () => {
    const selfSigned = makeCertificate({ commonName: 'x509-self' });
    await registry.create({
      deviceId: 'x509-self',
      authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: selfSigned.sha1 } },
    } as any);
    const secondary = makeCertificate({ commonName: 'any name will do' });
    await registry.create({
      deviceId: 'x509-self256',
      authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: 'AB'.repeat(20), secondaryThumbprint: secondary.sha256 } },
    } as any);
    const caSigned = makeCertificate({ commonName: 'x509-casigned', issuer: trustedCa });
    await registry.create({ deviceId: 'x509-casigned', authentication: { type: 'certificateAuthority' } } as any);

    for (const [deviceId, cert] of [
      ['x509-self', selfSigned],
      ['x509-self256', secondary],
      ['x509-casigned', caSigned],
    ] as const) {
      const client = await certificateClient(t, deviceId, cert);
      open.push(client);
      await client.open();
      await client.sendEvent(new deviceSdk.Message(JSON.stringify({ from: deviceId })));
      const twin = await client.getTwin();
      assert.equal(typeof twin.properties.desired.$version, 'number', `${deviceId} reads its twin`);
      await client.close();
    }
  });

  test('refused with CONNACK 5: a wrong thumbprint, an expired certificate, a CN that is not the device id, an untrusted CA, a SAS device', async () => {
    const registered = makeCertificate({ commonName: 'x509-wrong' });
    await registry.create({ deviceId: 'x509-wrong', authentication: { x509Thumbprint: { primaryThumbprint: registered.sha1 } } });
    const expired = makeCertificate({ commonName: 'x509-expired', validDays: { from: -30, to: -1 } });
    await registry.create({ deviceId: 'x509-expired', authentication: { x509Thumbprint: { primaryThumbprint: expired.sha256 } } });
    await registry.create({ deviceId: 'x509-cn', authentication: { type: 'certificateAuthority' } } as any);
    await registry.create({ deviceId: 'x509-untrusted', authentication: { type: 'certificateAuthority' } } as any);
    await registry.create({ deviceId: 'x509-expired-ca', authentication: { type: 'certificateAuthority' } } as any);
    await registry.create({ deviceId: 'sas-with-cert' });

    const cases: Array<[string, string, TestCertificate]> = [
      ['a certificate whose thumbprint is not registered', 'x509-wrong', makeCertificate({ commonName: 'x509-wrong' })],
      ['an expired certificate with the registered thumbprint', 'x509-expired', expired],
      ["a trusted CA's certificate for another CN", 'x509-cn', makeCertificate({ commonName: 'someone-else', issuer: trustedCa })],
      [
        'a certificate from a CA the hub does not trust',
        'x509-untrusted',
        makeCertificate({ commonName: 'x509-untrusted', issuer: untrustedCa }),
      ],
      [
        'an expired certificate from the trusted CA',
        'x509-expired-ca',
        makeCertificate({ commonName: 'x509-expired-ca', issuer: trustedCa, validDays: { from: -30, to: -1 } }),
      ],
      ['a SAS device that presents a certificate and no password', 'sas-with-cert', makeCertificate({ commonName: 'sas-with-cert' })],
    ];
    for (const [what, deviceId, cert] of cases) {
      assert.equal(await rawCertificateConnect(t, deviceId, cert), 5, what);
    }
    const sdk = await certificateClient(t, 'x509-wrong', makeCertificate({ commonName: 'x509-wrong' }));
    const err = await sdk.open().then(
      () => undefined,
      (e: Error) => e,
    );
    assert.equal(err?.constructor.name, 'UnauthorizedError', 'the SDK reports the refusal as unauthorized');
    await sdk.close().catch(() => undefined);
  });

  test('an X.509 identity has no keys: a token signed with an empty key is refused, its certificate admitted', async () => {
    const cert = makeCertificate({ commonName: 'x509-token' });
    await registry.create({ deviceId: 'x509-token', authentication: { x509Thumbprint: { primaryThumbprint: cert.sha1 } } });
    const emptyKeyToken = createSasToken('localhost/devices/x509-token', '', undefined, 600);
    assert.equal(await rawConnect(t.hub, { deviceId: 'x509-token' }, emptyKeyToken), 5);
    const client = await rawCertificateConnect(t, 'x509-token', cert);
    assert.notEqual(typeof client, 'number');
    (client as mqtt.MqttClient).end(true);
  });

  test('changing the thumbprint ends the connections made with the old certificate', async () => {
    const first = makeCertificate({ commonName: 'x509-rotate' });
    const second = makeCertificate({ commonName: 'x509-rotate' });
    await registry.create({ deviceId: 'x509-rotate', authentication: { x509Thumbprint: { primaryThumbprint: first.sha1 } } });
    const client = await rawCertificateConnect(t, 'x509-rotate', first);
    assert.notEqual(typeof client, 'number');
    let closed = false;
    (client as mqtt.MqttClient).once('close', () => (closed = true));
    await registry.update({ deviceId: 'x509-rotate', authentication: { x509Thumbprint: { primaryThumbprint: second.sha1 } } });
    await until(() => closed, 'the hub closed the old connection', 30_000);
    assert.equal(await rawCertificateConnect(t, 'x509-rotate', first), 5);
    const again = await rawCertificateConnect(t, 'x509-rotate', second);
    assert.notEqual(typeof again, 'number');
    (again as mqtt.MqttClient).end(true);
  });
});

describe('hub start --trusted-ca, as a user runs it', () => {
  const home = mkdtempSync(join(tmpdir(), 'iothub-tut-x509-'));
  after(() => rmSync(home, { recursive: true, force: true }));

  test('a file that cannot be read, or that is not a CA certificate: one line, exit 2', async () => {
    const leaf = makeCertificate({ commonName: 'not-a-ca' });
    writeFileSync(join(home, 'leaf.pem'), leaf.cert);
    writeFileSync(join(home, 'junk.pem'), 'not a certificate');
    const cases: Array<[string, RegExp]> = [
      [join(home, 'missing.pem'), /^error: --trusted-ca: cannot read .*missing\.pem: ENOENT$/],
      [join(home, 'leaf.pem'), /^error: --trusted-ca: .*leaf\.pem \(CN=not-a-ca\) is not a CA certificate/],
      [join(home, 'junk.pem'), /^error: --trusted-ca: .*junk\.pem holds no PEM certificate$/],
    ];
    for (const [file, message] of cases) {
      const result = await runCli(['hub', 'start', '--in-memory', '--port', '0', '--amqp-port', '0', '--trusted-ca', file], {
        IOTHUB_TUT_HOME: home,
      });
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr.trim(), message);
    }
  });

  test('a device whose certificate the trusted CA signed connects to that hub', async () => {
    const ca = makeCertificate({ commonName: 'my fleet CA', isCa: true });
    const caFile = join(home, 'fleet-ca.pem');
    writeFileSync(caFile, ca.cert);
    const hub = new CliProcess(
      ['hub', 'start', '--in-memory', '--port', '0', '--amqp-port', '0', '--json', '--show-secrets', '--trusted-ca', caFile],
      { IOTHUB_TUT_HOME: home },
    );
    try {
      const started = await hub.waitFor((l) => l.event === 'started');
      const connection = parseConnection('service', started.serviceConnectionString, {
        ca: readFileSync(started.caFile, 'utf8'),
        port: started.port,
      });
      await createRegistry(connection).create({ deviceId: 'fleet-1', authentication: { type: 'certificateAuthority' } } as any);
      const address = { hub: { port: started.port, tls: { ca: readFileSync(started.caFile, 'utf8') } } } as unknown as TestHub;
      const client = await certificateClient(address, 'fleet-1', makeCertificate({ commonName: 'fleet-1', issuer: ca }));
      await client.open();
      await client.sendEvent(new deviceSdk.Message('hello'));
      await client.close();
    } finally {
      assert.equal(await hub.stop(), 0);
    }
  });
});
