import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import avsc from 'avsc';
import deviceSdk from 'azure-iot-device';
import { earliestEventPosition } from '@azure/event-hubs';
import { onDisk, portsBelowEphemeral, startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity } from '../helpers/devices.js';
import { collect, consumer } from '../helpers/events.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { createRegistry } from '../../src/clients/service-clients.js';
import { parseRoutingSettings, RoutingSettingsError } from '../../src/hub/routing/routing-settings.js';
import { StorageEndpoint, type StorageRecord } from '../../src/hub/routing/storage-endpoint.js';
import { BlobAccount } from '../../src/hub/storage/blob-account.js';
import { RecordQueue } from '../../src/hub/store/record-queue.js';
import { openDatabase } from '../../src/hub/store/database.js';
import { createLog } from '../../src/hub/log.js';

// Storage container endpoints, as the IoT Hub routing tutorial sets one up: routes send messages to a
// container of a storage account (here Azurite, a real blob service), where the hub writes them in
// batches as Avro or JSON blobs named {iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}. The blobs are
// read back with @azure/storage-blob and decoded with avsc, an independent Avro reader.

const BLOB_NAME = /^localhost\/[0-3]\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/\d{2}$/;
const STORAGE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/;

interface BlobRecord {
  EnqueuedTimeUtc: string;
  Properties: Record<string, string>;
  SystemProperties: Record<string, string>;
  Body: unknown;
}

function storageEndpoint(name: string, connectionString: string, containerName: string, encoding: string) {
  return { name, connectionString, containerName, encoding, batchFrequencyInSeconds: 60 };
}

function message(body: object | string, properties: Record<string, string>, json = true): deviceSdk.Message {
  const m = new deviceSdk.Message(typeof body === 'string' ? body : JSON.stringify(body));
  if (json) {
    m.contentType = 'application/json';
    m.contentEncoding = 'utf-8';
  }
  for (const [name, value] of Object.entries(properties)) m.properties.add(name, value);
  return m;
}

/** Every blob of a container: its name and content. */
async function blobs(azurite: Azurite, container: string): Promise<Map<string, Buffer>> {
  const client = azurite.service.getContainerClient(container);
  const found = new Map<string, Buffer>();
  for await (const blob of client.listBlobsFlat()) found.set(blob.name, await client.getBlobClient(blob.name).downloadToBuffer());
  return found;
}

/** The records of an Avro container file, with avsc. */
async function avroRecords(file: Buffer): Promise<{ records: BlobRecord[]; codec: string }> {
  const records: BlobRecord[] = [];
  let codec = '';
  await new Promise<void>((resolve, reject) => {
    Readable.from([file])
      .pipe(new avsc.streams.BlockDecoder())
      .on('metadata', (_type: unknown, metadataCodec: string) => (codec = metadataCodec))
      .on('data', (record: BlobRecord) => records.push(record))
      .on('end', resolve)
      .on('error', reject);
  });
  return { records, codec };
}

function jsonRecords(file: Buffer): BlobRecord[] {
  return file
    .toString('utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as BlobRecord);
}

async function send(t: TestHub, deviceId: string, messages: deviceSdk.Message[]): Promise<void> {
  const client = await openDevice(await registerIdentity(t, deviceId), 'mqtt');
  try {
    for (const m of messages) await client.sendEvent(m);
  } finally {
    await client.close();
  }
}

describe('message routing to storage containers', () => {
  let azurite: Azurite;
  before(async () => (azurite = await startAzurite()));
  after(async () => azurite.stop());

  test('JSON encoding: a JSON body as JSON, any other as base64; the endpoint’s enrichments, not the others’; the route to events too', async () => {
    const t = await startTestHub({
      routing: parseRoutingSettings({
        endpoints: { storageContainers: [storageEndpoint('archive', azurite.connectionString, 'json-archive', 'JSON')] },
        routes: [
          { name: 'cold', source: 'DeviceMessages', condition: "level = 'storage'", endpointNames: ['archive'], isEnabled: true },
          { name: 'all', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
        ],
        enrichments: [{ key: 'archived-by', value: '$iothubname', endpointNames: ['archive'] }],
      }),
    });
    try {
      const exact = '{"id":12345678901234567890,"v":1e400,"t":1.50}'; // what a parse and a stringify would change
      const deep = '['.repeat(5000) + ']'.repeat(5000); // deeper than JSON.stringify goes
      await send(t, 'json-device', [
        message({ temperature: 21.5 }, { level: 'storage' }),
        message('plain text', { level: 'storage' }, false),
        message({ temperature: 30 }, { level: 'normal' }),
        message('{\n  "pretty": true\n}', { level: 'storage' }),
        message(exact, { level: 'storage' }),
        message(deep, { level: 'storage' }),
      ]);
      await t.hub.routing!.flushStorage();
      const written = await blobs(azurite, 'json-archive');
      assert.equal(written.size, 1, [...written.keys()].join());
      const [name, content] = [...written][0]!;
      assert.match(name, BLOB_NAME);
      const lines = content.toString('utf8').split('\n');
      assert.deepEqual([lines.length, lines[5]], [6, ''], 'a line per message, each ended; the message of level normal not archived');
      assert.ok(lines[2]!.endsWith('"Body":{   "pretty": true }}'), `a body's line breaks are spaces: ${lines[2]}`);
      assert.ok(lines[3]!.endsWith(`"Body":${exact}}`), 'a JSON body is written as the device sent it');
      assert.ok(lines[4]!.endsWith(`"Body":${deep}}`), 'however deep');
      const [json, plain] = jsonRecords(Buffer.from(lines.slice(0, 2).join('\n')));
      assert.deepEqual(json!.Body, { temperature: 21.5 });
      assert.equal(plain!.Body, Buffer.from('plain text').toString('base64'));
      assert.match(json!.EnqueuedTimeUtc, STORAGE_TIME);
      assert.deepEqual(json!.Properties, { level: 'storage', 'archived-by': 'localhost' });
      const system = json!.SystemProperties;
      assert.equal(system.connectionDeviceId, 'json-device');
      assert.equal(JSON.parse(system.connectionAuthMethod!).type, 'sas');
      assert.match(system.connectionDeviceGenerationId!, /^\d+$/);
      assert.equal(system.contentType, 'application/json');
      assert.match(system.enqueuedTime!, STORAGE_TIME);

      // The same messages on the built-in endpoint: all three, without the archive's enrichment.
      const reader = consumer(t.hub.eventHubConnectionString());
      const received = collect(reader, earliestEventPosition);
      try {
        await received.until(30_000, 'three messages', () => received.events.length >= 3);
        for (const event of received.events) assert.equal(event.properties?.['archived-by'], undefined);
      } finally {
        await received.close();
        await reader.close();
      }
    } finally {
      await t.dispose();
    }
  });

  for (const encoding of ['Avro', 'AvroDeflate'] as const) {
    test(`${encoding}: IoT Hub's Avro schema; twin change events too; a second batch in the same minute appends to the blob`, async () => {
      const container = `${encoding.toLowerCase()}-archive`;
      const t = await startTestHub({
        routing: parseRoutingSettings({
          endpoints: { storageContainers: [storageEndpoint('archive', azurite.connectionString, container, encoding)] },
          routes: [
            { name: 'telemetry', source: 'DeviceMessages', condition: 'true', endpointNames: ['archive'], isEnabled: true },
            { name: 'twins', source: 'TwinChangeEvents', condition: 'true', endpointNames: ['archive'], isEnabled: true },
          ],
        }),
      });
      try {
        const client = await openDevice(await registerIdentity(t, 'avro-device'), 'mqtt');
        try {
          await client.sendEvent(message({ n: 1 }, { kind: 'first' }));
          await t.hub.routing!.flushStorage();
          await createRegistry(t.connection).updateTwin('avro-device', { tags: { site: 'lab' } }, '*');
          await client.sendEvent(message({ n: 2 }, { kind: 'second' }));
          await t.hub.routing!.flushStorage();
        } finally {
          await client.close();
        }

        const written = await blobs(azurite, container);
        // Both batches fell in one minute (the blob's name holds the minute): one blob, appended to; or two, in a minute's turn.
        const decoded = await Promise.all([...written.values()].map(avroRecords));
        for (const { codec } of decoded) assert.equal(codec, encoding === 'Avro' ? 'null' : 'deflate');
        for (const name of written.keys()) assert.match(name, BLOB_NAME);
        const records = decoded.flatMap((d) => d.records);
        assert.deepEqual(
          records.map((r) => r.Properties.kind ?? r.Properties.opType),
          ['first', 'updateTwin', 'second'],
        );
        const [first, twinChange] = records;
        assert.deepEqual(JSON.parse((first!.Body as Buffer).toString('utf8')), { n: 1 });
        assert.equal(first!.SystemProperties.connectionDeviceId, 'avro-device');
        assert.deepEqual(JSON.parse((twinChange!.Body as Buffer).toString('utf8')).tags, { site: 'lab' });
        assert.equal(twinChange!.SystemProperties['iothub-message-source'], 'twinChangeEvents');
        assert.equal(twinChange!.Properties.hubName, 'localhost');
      } finally {
        await t.dispose();
      }
    });
  }

  test(
    'nothing is lost: messages the storage account does not take wait in the hub’s store, across a restart, for the next batch',
    onDisk(),
    async () => {
      const dataDir = tempDir();
      const [port, amqpPort] = await portsBelowEphemeral(2);
      const routing = (connectionString: string, name = 'archive') =>
        parseRoutingSettings({
          endpoints: { storageContainers: [storageEndpoint(name, connectionString, 'durable-archive', 'JSON')] },
          routes: [{ name: 'all', source: 'DeviceMessages', condition: 'true', endpointNames: [name], isEnabled: true }],
        });
      const unreachable = azurite.connectionString.replace(/BlobEndpoint=http:\/\/127\.0\.0\.1:\d+/, 'BlobEndpoint=http://127.0.0.1:1');
      const first = await startTestHub({ dataDir, port, eventHubPort: amqpPort, routing: routing(unreachable) });
      let second: TestHub | undefined;
      try {
        await send(first, 'durable-device', [message({ n: 1 }, {}), message({ n: 2 }, {})]);
        await first.hub.routing!.flushStorage(); // refused: ECONNREFUSED, logged; the records stay
        await first.stop(); // tries once more, and keeps them
        // Started with the endpoint under another name, the hub says what waits for the old one.
        const lines: string[] = [];
        const renamed = await startTestHub({
          dataDir,
          port,
          eventHubPort: amqpPort,
          routing: routing(azurite.connectionString, 'archive-2'),
          log: createLog('warn', (line) => lines.push(line)),
        });
        await renamed.stop();
        assert.match(lines.join(''), /2 message\(s\) wait in the store for a storage endpoint the routing settings no longer name/);
        second = await startTestHub({ dataDir, port, eventHubPort: amqpPort, routing: routing(azurite.connectionString) });
        await second.hub.routing!.flushStorage();
        const records = [...(await blobs(azurite, 'durable-archive')).values()].flatMap(jsonRecords);
        assert.deepEqual(
          records.map((r) => (r.Body as { n: number }).n),
          [1, 2],
        );
        await second.hub.routing!.flushStorage();
        const again = [...(await blobs(azurite, 'durable-archive')).values()].flatMap(jsonRecords);
        assert.equal(again.length, 2, 'a record a blob holds is written once');
      } finally {
        await (second ?? first).dispose();
      }
    },
  );

  test("a blob another encoding wrote is left alone: a batch in its minute goes to '<name>.<encoding>'", async () => {
    const hubWith = (encoding: string) =>
      startTestHub({
        routing: parseRoutingSettings({
          endpoints: { storageContainers: [storageEndpoint('archive', azurite.connectionString, 'mixed-archive', encoding)] },
          routes: [{ name: 'all', source: 'DeviceMessages', condition: 'true', endpointNames: ['archive'], isEnabled: true }],
        }),
      });
    for (const [encoding, n] of [
      ['JSON', 1],
      ['Avro', 2],
    ] as const) {
      const t = await hubWith(encoding);
      try {
        await send(t, 'mixed-device', [message({ n }, {})]); // one device: one partition, one blob a minute
        await t.hub.routing!.flushStorage();
      } finally {
        await t.dispose();
      }
    }
    const written = await blobs(azurite, 'mixed-archive');
    const bodies: unknown[] = [];
    for (const [name, content] of written) {
      if (content.subarray(0, 4).toString('latin1') === 'Obj\x01') {
        bodies.push(...(await avroRecords(content)).records.map((r) => JSON.parse((r.Body as Buffer).toString('utf8'))));
      } else bodies.push(...jsonRecords(content).map((r) => r.Body));
      assert.match(name, /^localhost\/[0-3]\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/\d{2}(\.avro)?$/);
    }
    assert.deepEqual(
      bodies.sort((a: any, b: any) => a.n - b.n),
      [{ n: 1 }, { n: 2 }],
      'each blob reads whole in its own encoding',
    );
  });

  test('the hub writes what waits when it stops', async () => {
    const t = await startTestHub({
      routing: parseRoutingSettings({
        endpoints: { storageContainers: [storageEndpoint('archive', azurite.connectionString, 'stop-archive', 'JSON')] },
        routes: [{ name: 'all', source: 'DeviceMessages', condition: 'true', endpointNames: ['archive'], isEnabled: true }],
      }),
    });
    await send(t, 'stop-device', [message({ n: 1 }, {})]);
    await t.dispose();
    const records = [...(await blobs(azurite, 'stop-archive')).values()].flatMap(jsonRecords);
    assert.equal(records.length, 1);
  });
});

describe('storage endpoint settings', () => {
  const connectionString = 'UseDevelopmentStorage=true';
  const withEndpoint = (endpoint: object) => ({
    endpoints: { storageContainers: [{ name: 'archive', connectionString, containerName: 'archive', ...endpoint }] },
    routes: [{ name: 'r', source: 'DeviceMessages', condition: 'true', endpointNames: ['archive'], isEnabled: true }],
  });
  const refused = (settings: object, message: RegExp) =>
    assert.throws(
      () => parseRoutingSettings(settings),
      (err: Error) => err instanceof RoutingSettingsError && message.test(err.message),
    );

  test("ARM's defaults, and UseDevelopmentStorage=true for Azurite over http", () => {
    const [endpoint] = parseRoutingSettings(withEndpoint({})).storageEndpoints;
    assert.equal(endpoint!.fileNameFormat, '{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}');
    assert.equal(endpoint!.batchFrequencyInSeconds, 300);
    assert.equal(endpoint!.maxChunkSizeInBytes, 314_572_800);
    assert.equal(endpoint!.encoding, 'avro');
    assert.equal(endpoint!.storage.blobEndpoint, 'http://127.0.0.1:10000/devstoreaccount1');
  });

  test('refuses what ARM refuses, each with why, and never echoes the key', () => {
    refused(withEndpoint({ fileNameFormat: '{iothub}/{partition}/{YYYY}/{MM}/{DD}' }), /fileNameFormat without \{HH\}, \{mm\}/);
    refused(withEndpoint({ batchFrequencyInSeconds: 30 }), /batchFrequencyInSeconds is 30: a whole number from 60 to 720/);
    refused(withEndpoint({ maxChunkSizeInBytes: 1024 }), /maxChunkSizeInBytes is 1024: a whole number from 10485760 to 524288000/);
    refused(withEndpoint({ encoding: 'parquet' }), /encoding "parquet": it is Avro, AvroDeflate or JSON/);
    refused(withEndpoint({ containerName: 'Has_Caps' }), /storage endpoint 'archive': 'Has_Caps' is not a container name/);
    refused(
      withEndpoint({ authenticationType: 'identityBased', connectionString: undefined }),
      /needs the storage account's connectionString/,
    );
    refused(withEndpoint({ name: 'events' }), /the endpoint name 'events' is reserved/);
    assert.throws(
      () => parseRoutingSettings(withEndpoint({ connectionString: 'AccountName=a;AccountKey=not base64!' })),
      (err: Error) => /AccountKey is not base64/.test(err.message) && !err.message.includes('not base64!'),
    );
  });
});

describe('a storage endpoint its storage account never answers', () => {
  test('keeps at most its bound and a record a day (here 3 records and 1 s), dropping the oldest with a warning; the rest wait', async () => {
    const lines: string[] = [];
    let now = Date.parse('2026-12-03T08:00:00Z');
    const settings = parseRoutingSettings({
      endpoints: { storageContainers: [storageEndpoint('archive', 'UseDevelopmentStorage=true', 'nowhere', 'JSON')] },
      routes: [{ name: 'r', source: 'DeviceMessages', condition: 'true', endpointNames: ['archive'], isEnabled: true }],
    }).storageEndpoints[0]!;
    const unreachable = { ...settings.storage, blobEndpoint: 'http://127.0.0.1:1/devstoreaccount1' };
    const queue = new RecordQueue<StorageRecord>(openDatabase(':memory:'), 'routing_storage_test');
    const endpoint = new StorageEndpoint(
      settings,
      queue,
      new BlobAccount(unreachable, ''),
      'localhost',
      createLog('warn', (line) => lines.push(line)),
      () => now,
      { maxWaiting: 3, recordTtlMs: 1000 },
    );
    const record = (n: number): StorageRecord => ({
      partition: 0,
      enqueuedTimeUtc: '2026-12-03T08:00:00.0000000Z',
      properties: { n: String(n) },
      systemProperties: {},
      body: '',
      jsonBody: false,
    });
    await Promise.all([1, 2, 3, 4, 5].map((n) => endpoint.add(record(n))));
    assert.deepEqual(
      queue.oldest(now, 10).map((q) => q.record.properties.n),
      ['3', '4', '5'],
    );
    assert.match(lines.join(''), /storage endpoint 'archive' dropped its 2 oldest message\(s\), beyond 3 waiting/);

    await endpoint.flush(); // refused: they wait
    assert.equal(queue.count(), 3);
    assert.match(
      lines.join(''),
      /could not write to http:\/\/127\.0\.0\.1:1\/devstoreaccount1\/nowhere, the messages wait for the next batch/,
    );
    now += 60_001; // past the records' time, and past a minute since the last warning (the hub warns once a minute at most)
    await endpoint.close();
    assert.equal(queue.count(), 0);
    assert.match(lines.join(''), /dropped its 3 oldest message\(s\), out of time/);
  });
});
