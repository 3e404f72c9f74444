import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tls from 'node:tls';
import type iothub from 'azure-iothub';
import { createDeviceClient, type DeviceClient, type DeviceTransport } from '../../src/clients/device-clients.js';
import { certificateConnection, identityConnectionWithKey } from '../../src/clients/connection-string.js';
import { makeCertificate } from '../../src/clients/certificates.js';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { STORAGE_CERT_FILE, STORAGE_KEY_FILE } from '../../src/hub/defaults.js';
import { checkContainerName, parseStorageAccount, StorageAccountError } from '../../src/hub/storage/storage-account.js';
import type { FileNotification } from '../../src/hub/file-upload/file-uploads.js';
import { createLog } from '../../src/hub/log.js';
import { Throttle } from '../../src/hub/throttling.js';
import { azuriteHttpsConnectionString, startAzurite, type Azurite } from '../helpers/azurite.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';
import { diskDir, portsBelowEphemeral, startTestHub, type TestHub } from '../helpers/hub.js';

// File upload as Microsoft's samples do it: azure-iot-device's uploadToBlob (a SAS URI from the hub,
// the upload to the storage account with @azure/storage-blob, the status back to the hub) and
// azure-iothub's file notification receiver, against the hub with Azurite over https behind it,
// serving the certificate the hub writes for it.

const CONTAINER = 'uploads';

/** The notifications a receiver gets, each completed (or, with `settle` false, left unsettled). */
function notifications(receiver: iothub.Client.ServiceReceiver, settle = true): FileNotification[] {
  const got: FileNotification[] = [];
  receiver.on('message', (msg: { getData(): Buffer }) => {
    got.push(JSON.parse(msg.getData().toString('utf8')));
    if (settle) receiver.complete(msg as never, () => undefined);
  });
  return got;
}

describe('file upload: azure-iot-device uploadToBlob to Azurite, notifications to azure-iothub', () => {
  let t: TestHub;
  let azurite: Azurite;
  let service: iothub.Client;
  let trustedBefore: string[];
  const dataDir = diskDir();
  const devices: DeviceClient[] = [];
  const logLines: string[] = [];

  async function startHub(port: number): Promise<TestHub> {
    return startTestHub({
      dataDir,
      log: createLog('info', (line) => logLines.push(line)),
      fileUpload: { connectionString: azuriteHttpsConnectionString(port), container: CONTAINER },
    });
  }

  before(async () => {
    const [port] = await portsBelowEphemeral(1);
    t = await startHub(port!);
    // The storage upload goes through @azure/storage-blob's own https agent, which trusts what the
    // process trusts: as an app run with NODE_EXTRA_CA_CERTS=<the hub's ca.pem>.
    trustedBefore = tls.getCACertificates('default');
    tls.setDefaultCACertificates([...trustedBefore, t.hub.tls.ca]);
    const tlsDir = join(dataDir, 'tls');
    azurite = await startAzurite({ cert: join(tlsDir, STORAGE_CERT_FILE), key: join(tlsDir, STORAGE_KEY_FILE), port: port! });
    service = createServiceClient(t.connection);
    await service.open();
  });
  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await service?.close();
    await t?.dispose();
    await azurite?.stop();
    tls.setDefaultCACertificates(trustedBefore);
  });

  /** Stops the hub (its clients closed first) and starts it again on the same data dir and storage account. */
  async function restartHub(): Promise<void> {
    await Promise.all(devices.splice(0).map((d) => d.close()));
    await service.close();
    await t.hub.stop();
    t = await startHub(Number(new URL(azurite.service.url).port));
    service = createServiceClient(t.connection);
    await service.open();
  }

  async function device(deviceId: string, transport: DeviceTransport = 'mqtt'): Promise<DeviceClient> {
    const client = await openDevice(await registerIdentity(t, deviceId), transport);
    devices.push(client);
    return client;
  }

  for (const transport of ['mqtt', 'amqp', 'http'] as const) {
    test(`a device on ${transport} uploads with uploadToBlob; the blob is {deviceId}/{name} in the container; the service is notified`, async () => {
      const deviceId = `uploader-${transport}`;
      const client = await device(deviceId, transport);
      const receiver = (await service.getFileNotificationReceiver()).result;
      const got = notifications(receiver);
      const content = Buffer.from(`readings from ${deviceId}\n`.repeat(100));
      await client.uploadToBlob('logs/today.txt', Readable.from([content]), content.length);

      const blob = azurite.service.getContainerClient(CONTAINER).getBlobClient(`${deviceId}/logs/today.txt`);
      assert.deepEqual(await blob.downloadToBuffer(), content);
      await until(() => got.some((n) => n.deviceId === deviceId), 'the file upload notification arrived');
      const notification = got.find((n) => n.deviceId === deviceId)!;
      const properties = await blob.getProperties();
      assert.equal(notification.blobName, `${deviceId}/logs/today.txt`);
      assert.equal(
        notification.blobUri,
        `https://127.0.0.1:${new URL(azurite.service.url).port}/devstoreaccount1/${CONTAINER}/${deviceId}/logs/today.txt`,
      );
      assert.equal(notification.blobSizeInBytes, content.length);
      assert.equal(notification.lastUpdatedTime, properties.lastModified!.toISOString());
      assert.ok(Date.parse(notification.enqueuedTimeUtc) >= properties.lastModified!.getTime(), notification.enqueuedTimeUtc);
      assert.match(logLines.join(''), new RegExp(`device ${deviceId}'s file upload to ${CONTAINER}/${deviceId}/logs/today.txt succeeded`));
      // The log shows no SAS signature and no account key.
      assert.doesNotMatch(logLines.join(''), /sig=[^*]|AccountKey=[^*]/);
    });
  }

  test('an X.509 device uploads too: its two REST calls carry its client certificate, not a token', async () => {
    const cert = makeCertificate({ commonName: 'x509-uploader' });
    await createRegistry(t.connection).create({
      deviceId: 'x509-uploader',
      authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: cert.sha256 } },
    } as any);
    const client = await createDeviceClient(
      certificateConnection({ hostName: 'localhost', transport: t.connection.transport }, { deviceId: 'x509-uploader' }, cert),
      'mqtt',
    );
    devices.push(client);
    await client.open();
    const content = Buffer.from('signed, not keyed');
    await client.uploadToBlob('cert.txt', Readable.from([content]), content.length);
    const blob = azurite.service.getContainerClient(CONTAINER).getBlobClient('x509-uploader/cert.txt');
    assert.deepEqual(await blob.downloadToBuffer(), content);
  });

  test('the SAS URI is for one blob, read and write, https only, until the SAS TTL; a failed upload sends no notification', async () => {
    const client = await device('sas-reader');
    const receiver = (await service.getFileNotificationReceiver()).result;
    const got = notifications(receiver);
    const before = Date.now();
    const params = await client.getBlobSharedAccessSignature('image.jpg');
    assert.equal(params.hostName, `127.0.0.1:${new URL(azurite.service.url).port}/devstoreaccount1`);
    assert.equal(params.containerName, CONTAINER);
    assert.equal(params.blobName, 'sas-reader/image.jpg');
    const sas = new URLSearchParams(params.sasToken!.slice(1));
    assert.equal(params.sasToken![0], '?');
    assert.equal(sas.get('sr'), 'b');
    assert.equal(sas.get('sp'), 'rw');
    assert.equal(sas.get('spr'), 'https');
    const expiry = Date.parse(sas.get('se')!);
    assert.ok(expiry >= before + 59 * 60_000 && expiry <= Date.now() + 61 * 60_000, sas.get('se')!);

    await client.notifyBlobUploadStatus(params.correlationId, false, 500, 'the camera was unplugged');
    // A success after it, of another upload, is the first notification the receiver gets.
    const next = await client.getBlobSharedAccessSignature('after.txt');
    await azurite.service.getContainerClient(CONTAINER).getBlockBlobClient(next.blobName!).upload('x', 1);
    await client.notifyBlobUploadStatus(next.correlationId, true, 200, 'ok');
    await until(() => got.length > 0, 'a notification arrived');
    assert.deepEqual(
      got.map((n) => n.blobName),
      ['sas-reader/after.txt'],
    );
    assert.match(
      logLines.join(''),
      /device sas-reader's file upload to uploads\/sas-reader\/image.jpg failed \(500 the camera was unplugged\)/,
    );
  });

  test('ten uploads in progress are the limit (403006); completing one frees a place', async () => {
    const client = await device('busy-uploader');
    const begun = [];
    for (let i = 0; i < 10; i++) begun.push(await client.getBlobSharedAccessSignature(`file-${i}`));
    await assert.rejects(client.getBlobSharedAccessSignature('file-10'), (err: Error & { responseBody?: string }) => {
      assert.match(String(err.responseBody), /DeviceMaximumActiveFileUploadLimitExceeded/);
      assert.match(String(err.responseBody), /403006/);
      return true;
    });
    await client.notifyBlobUploadStatus(begun[0]!.correlationId, false, 400, 'gave up');
    assert.equal((await client.getBlobSharedAccessSignature('file-10')).blobName, 'busy-uploader/file-10');
  });

  test("a device cannot complete another device's upload, nor one the hub did not begin (400)", async () => {
    const owner = await device('owner');
    const other = await device('other');
    const { correlationId } = await owner.getBlobSharedAccessSignature('mine.txt');
    const refusals = logLines.length;
    for (const [client, id] of [
      [other, correlationId],
      [owner, `${correlationId!.split('.')[0]}.AAAA`],
      [owner, 'not-a-correlation-id'],
    ] as const) {
      // The SDK keeps only the status line of this answer; the hub's log has the reason.
      await assert.rejects(client.notifyBlobUploadStatus(id!, true, 200, 'ok'), { message: 'Bad Request' });
    }
    const reasons = logLines.slice(refusals).join('');
    assert.match(reasons, /400 ArgumentInvalid The correlation id is not one this hub gave device other for a file upload/);
    assert.equal(reasons.match(/The correlation id is not one this hub gave device owner/g)?.length, 2, reasons);
    await owner.notifyBlobUploadStatus(correlationId!, false, 400, 'never mind');
    // Once only.
    await assert.rejects(owner.notifyBlobUploadStatus(correlationId!, true, 200, 'ok'), { message: 'Bad Request' });
    assert.match(logLines.join(''), /400 ArgumentInvalid Device owner has completed the file upload of owner\/mine.txt already/);
  });

  test('a notification no receiver settled is kept across a restart of the hub, and then delivered', async () => {
    const client = await device('before-restart');
    const { correlationId, blobName } = await client.getBlobSharedAccessSignature('kept.txt');
    await azurite.service.getContainerClient(CONTAINER).getBlockBlobClient(blobName!).upload('kept', 4);
    // Completed after the hub restarts: the correlation id holds its upload.
    await restartHub();
    const key = (await createRegistry(t.connection).get('before-restart')).responseBody.authentication!.symmetricKey!.primaryKey!;
    const restarted = await openDevice(identityConnectionWithKey(t.connection, { deviceId: 'before-restart' }, key));
    devices.push(restarted);
    await restarted.notifyBlobUploadStatus(correlationId, true, 200, 'ok');
    await restartHub();
    const got = notifications((await service.getFileNotificationReceiver()).result);
    await until(() => got.some((n) => n.blobName === blobName), 'the kept notification arrived');
    assert.equal(got.find((n) => n.blobName === blobName)!.blobSizeInBytes, 4);
  });
});

describe('file upload on a hub without a storage account', () => {
  let t: TestHub;
  before(async () => (t = await startTestHub()));
  after(async () => t.dispose());

  test("a device's request for a SAS URI is refused with why (400), and the service's notification link stays open and silent", async () => {
    const client = await openDevice(await registerIdentity(t, 'no-storage'));
    const service = createServiceClient(t.connection);
    try {
      await service.open();
      const receiver = (await service.getFileNotificationReceiver()).result;
      const got = notifications(receiver);
      await assert.rejects(client.getBlobSharedAccessSignature('a.txt'), (err: Error & { responseBody?: string }) => {
        assert.match(
          String(err.responseBody),
          /File upload is not configured on this hub: it has no storage account \(start it with --file-upload/,
        );
        return true;
      });
      assert.deepEqual(got, []);
    } finally {
      await client.close();
      await service.close();
    }
  });
});

describe('file upload with a storage account that does not answer', () => {
  let t: TestHub;
  const logLines: string[] = [];
  // A stopped clock: a drained bucket stays drained however slowly the test runs.
  const throttle = new Throttle('s1', () => 0);
  before(async () => {
    // Nothing listens on port 1: the hub cannot make the container, nor read a blob back.
    t = await startTestHub({
      throttle,
      log: createLog('info', (line) => logLines.push(line)),
      fileUpload: { connectionString: azuriteHttpsConnectionString(1), container: CONTAINER },
    });
  });
  after(async () => t.dispose());

  test("the SAS URI is still given (the hub signs it), the hub logs why; past the tier's initiations a request is throttled (429)", async () => {
    const client = await openDevice(await registerIdentity(t, 'unreachable'), 'http');
    try {
      const params = await client.getBlobSharedAccessSignature('a.txt');
      assert.equal(params.blobName, 'unreachable/a.txt');
      assert.match(
        logLines.join(''),
        /warn +rest: could not create the file upload container uploads at https:\/\/127.0.0.1:1\/devstoreaccount1: connect ECONNREFUSED/,
      );
      // A success the storage account cannot confirm is still notified, without the blob's size and time.
      await client.notifyBlobUploadStatus(params.correlationId!, true, 201, '');
      const [waiting] = t.hub.fileUploads!.notifications(10);
      assert.deepEqual(Object.keys(waiting!.record).sort(), ['blobName', 'blobUri', 'deviceId', 'enqueuedTimeUtc']);
      assert.match(logLines.join(''), /warn +rest: could not read uploads\/unreachable\/a.txt's size and time for its notification/);

      while (throttle.allow('fileUpload'));
      await assert.rejects(client.getBlobSharedAccessSignature('b.txt'), (err: Error & { responseBody?: string }) => {
        assert.match(String(err.responseBody), /ThrottlingException;File upload initiations are throttled/);
        return true;
      });
    } finally {
      await client.close();
    }
  });
});

describe('file upload settings', () => {
  test('a storage connection string: https endpoints only, with the account name and key', () => {
    const azure = parseStorageAccount('DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey=a2V5;EndpointSuffix=core.windows.net');
    assert.deepEqual(azure, {
      accountName: 'contoso',
      accountKey: 'a2V5',
      blobEndpoint: 'https://contoso.blob.core.windows.net',
      hostName: 'contoso.blob.core.windows.net',
    });
    assert.equal(parseStorageAccount(azuriteHttpsConnectionString(10000)).hostName, '127.0.0.1:10000/devstoreaccount1');
    for (const [value, why] of [
      ['UseDevelopmentStorage=true', /plain-http endpoint, and device SDKs upload over https/],
      ['DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5', /is not https/],
      ['AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/a', /http:\/\/127.0.0.1:10000 is not https/],
      ['AccountName=a', /needs AccountName and AccountKey/],
      ['AccountName=a;AccountKey=not base64!', /AccountKey is not base64/],
      ['HostName', /'HostName' is not a Key=Value pair/],
      ['AccountName=a;AccountKey=a2V5;BlobEndpoint=nowhere', /'nowhere' is not a URL/],
    ] as const) {
      assert.throws(
        () => parseStorageAccount(value),
        (err: Error) => err instanceof StorageAccountError && why.test(err.message),
        value,
      );
    }
  });

  test("a container name follows Azure's rule", () => {
    for (const good of ['abc', 'file-uploads', 'a1', 'x'.repeat(63)].filter((n) => n.length >= 3))
      assert.equal(checkContainerName(good), good);
    for (const bad of ['ab', 'Uploads', '-abc', 'abc-', 'a--b', 'a_b', 'x'.repeat(64)]) {
      assert.throws(() => checkContainerName(bad), /is not a container name/, bad);
    }
  });
});
