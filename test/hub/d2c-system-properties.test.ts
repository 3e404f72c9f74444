import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import deviceSdk from 'azure-iot-device';
import { earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { onDisk, restCall, startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { registerIdentity } from '../helpers/devices.js';
import { collect, consumer } from '../helpers/events.js';
import { rawConnect, deviceToken } from '../helpers/mqtt.js';
import { createDeviceClient } from '../../src/clients/device-clients.js';

const EXPIRY = new Date('2031-01-02T03:04:05.678Z');
const CREATED = new Date('2026-11-30T10:20:30.400Z');

/** The four bag properties on an SDK message, as a device app sets them (the SDK has no creation time). */
function message(from: string): deviceSdk.Message {
  const m = new deviceSdk.Message(JSON.stringify({ from }));
  m.messageId = from;
  m.to = '/devices/elsewhere/messages/events';
  m.expiryTimeUtc = EXPIRY.toISOString();
  m.interfaceId = 'urn:azureiot:ModelDiscovery:ModelInformation:1';
  return m;
}

/** Reads every event of the hub from the start with @azure/event-hubs, until `count` have arrived. */
async function readAll(t: TestHub, count: number): Promise<ReceivedEventData[]> {
  const reader = consumer(t.hub.eventHubConnectionString());
  const received = collect(reader, earliestEventPosition);
  try {
    await received.until(60_000, `${count} events`, () => received.events.length >= count);
    return received.events;
  } finally {
    await received.close();
    await reader.close();
  }
}

/** Sends one message with the bag over each of MQTT (the SDK), HTTPS (the SDK) and a raw MQTT publish with $.ctime. */
async function sendBags(t: TestHub): Promise<void> {
  for (const transport of ['mqtt', 'http'] as const) {
    const client = await createDeviceClient(await registerIdentity(t, `bag-${transport}`), transport);
    await client.open();
    await client.sendEvent(message(`bag-${transport}`));
    await client.close();
  }
  const connection = await registerIdentity(t, 'bag-raw');
  const raw = await rawConnect(t.hub, { deviceId: 'bag-raw' }, deviceToken({ deviceId: 'bag-raw' }, connection.key));
  assert.ok(typeof raw !== 'number', `CONNACK ${String(raw)}`);
  const bag = `$.mid=bag-raw&$.ctime=${encodeURIComponent(CREATED.toISOString())}&$.to=%2Fsomewhere`;
  await new Promise<void>((resolve, reject) =>
    raw.publish(`devices/bag-raw/messages/events/${bag}`, '{}', { qos: 1 }, (err) => (err ? reject(err) : resolve())),
  );
  raw.end();
}

function check(events: ReceivedEventData[], when: string): void {
  const byId = new Map(events.map((e) => [e.messageId, e]));
  for (const id of ['bag-mqtt', 'bag-http']) {
    const event = byId.get(id);
    assert.ok(event, `${id} arrived (${when})`);
    // azure-iot-device-http sends iothub-to on every request as the request's path: only MQTT's $.to is the message's.
    assert.equal(event.systemProperties?.to, id === 'bag-mqtt' ? '/devices/elsewhere/messages/events' : undefined, `${id}: to (${when})`);
    assert.equal(
      (event.systemProperties?.absoluteExpiryTime as Date | number | undefined)?.valueOf(),
      EXPIRY.getTime(),
      `${id}: absolute-expiry-time (${when})`,
    );
    assert.equal(event.systemProperties?.['iothub-interface-id'], 'urn:azureiot:ModelDiscovery:ModelInformation:1', `${id} (${when})`);
    assert.equal(event.properties?.['iothub-interface-id'], undefined, 'a system property, not an application one');
  }
  const rawEvent = byId.get('bag-raw');
  assert.ok(rawEvent, `bag-raw arrived (${when})`);
  assert.equal(
    (rawEvent.systemProperties?.creationTime as Date | number | undefined)?.valueOf(),
    CREATED.getTime(),
    `creation-time (${when})`,
  );
  assert.equal(rawEvent.systemProperties?.to, '/somewhere');
  assert.equal(rawEvent.systemProperties?.absoluteExpiryTime, undefined);
}

describe('D2C system properties $.to, $.exp, $.ctime and $.ifid (IoTHub-Expiry, iothub-creation-time-utc, iothub-interface-id over HTTPS) reach the Event Hubs-compatible endpoint as on IoT Hub', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(async () => t.dispose());

  test('over MQTT (the SDK, and a raw publish with $.ctime) and HTTPS (all but $.to)', async () => {
    await sendBags(t);
    check(await readAll(t, 3), 'live');
  });

  test('they are read back from the store after a restart', onDisk(), async (ctx) => {
    // A hub of its own with a named data dir: on disk whatever IOTHUB_TUT_TEST_STORE says.
    let restarted = await startTestHub({ dataDir: tempDir() });
    ctx.after(() => restarted.dispose());
    await sendBags(restarted);
    await restarted.stop();
    restarted = await startTestHub({ dataDir: restarted.dataDir });
    check(await readAll(restarted, 3), 'after a restart');
  });

  test('a $.exp (or IoTHub-Expiry) that is not a date is refused: the MQTT connection is closed, HTTPS answers 400, nothing is stored', async () => {
    const connection = await registerIdentity(t, 'bag-bad');
    const raw = await rawConnect(t.hub, { deviceId: 'bag-bad' }, deviceToken({ deviceId: 'bag-bad' }, connection.key));
    assert.ok(typeof raw !== 'number', `CONNACK ${String(raw)}`);
    const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
    raw.publish('devices/bag-bad/messages/events/$.exp=tomorrow', '{}', { qos: 1 });
    await closed;
    raw.end(true);
    const overHttps = await restCall(
      t,
      'POST',
      '/devices/bag-bad/messages/events?api-version=2021-04-12',
      deviceToken({ deviceId: 'bag-bad' }, connection.key),
      '{}',
      { headers: { 'IoTHub-Expiry': 'tomorrow' } },
    );
    assert.equal(overHttps.status, 400, JSON.stringify(overHttps.body));
    assert.match(JSON.stringify(overHttps.body), /not an ISO 8601 date/);
    const events = await readAll(t, 3);
    assert.ok(!events.some((e) => e.systemProperties?.['iothub-connection-device-id'] === 'bag-bad'));
  });
});
