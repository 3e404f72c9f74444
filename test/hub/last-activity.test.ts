import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import deviceSdk from 'azure-iot-device';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity } from '../helpers/devices.js';
import { c2dMessage } from '../helpers/c2d.js';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { openDatabase } from '../../src/hub/store/database.js';
import { IdentityStore } from '../../src/hub/store/identity-store.js';
import type { DeviceClient, DeviceTransport } from '../../src/clients/device-clients.js';

// lastActivityTime: "the last time the device or module authenticated, sent a message, or received a
// message". Connects and disconnects set it with the connection state; each message a device sends
// (any transport), each message it is handed, and each HTTPS request it makes set it too, written at
// most once a second.

const NEVER = '0001-01-01T00:00:00Z';

describe('lastActivityTime', () => {
  let t: TestHub;
  const clients: DeviceClient[] = [];
  before(async () => (t = await startTestHub()));
  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await t.dispose();
  });

  async function identity(deviceId: string): Promise<{ lastActivityTime: string; connectionStateUpdatedTime: string }> {
    return (await createRegistry(t.connection).get(deviceId)).responseBody as never;
  }

  /** Polls the registry (bounded) until the device's lastActivityTime is later than `than`; resolves to it. */
  async function activityAfter(deviceId: string, than: string, what: string): Promise<string> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { lastActivityTime } = await identity(deviceId);
      if (lastActivityTime > than) return lastActivityTime;
      if (Date.now() > deadline) assert.fail(`${what}: lastActivityTime stayed ${lastActivityTime}, not after ${than}`);
      await sleep(100);
    }
  }

  async function connected(deviceId: string, transport: DeviceTransport): Promise<DeviceClient> {
    const client = await openDevice(await registerIdentity(t, deviceId), transport);
    clients.push(client);
    return client;
  }

  for (const transport of ['mqtt', 'amqp', 'http'] as const) {
    test(`${transport}: each message the device sends moves it past its connect; the twin and a query show it`, async () => {
      const deviceId = `activity-${transport}`;
      const client = await connected(deviceId, transport);
      await sleep(20); // a later millisecond than the connect's, which a fast machine reaches in the same one
      await client.sendEvent(new deviceSdk.Message('first'));
      const { connectionStateUpdatedTime } = await identity(deviceId);
      // An HTTPS device holds no connection: only its requests move it.
      assert.equal(connectionStateUpdatedTime === NEVER, transport === 'http', connectionStateUpdatedTime);
      const first = await activityAfter(deviceId, connectionStateUpdatedTime, 'the first message');

      await sleep(20); // a later millisecond
      await client.sendEvent(new deviceSdk.Message('second'));
      const second = await activityAfter(deviceId, first, 'the second message');

      const twin = (await createRegistry(t.connection).getTwin(deviceId)).responseBody as { lastActivityTime?: string };
      assert.equal(twin.lastActivityTime, second);
      const query = createRegistry(t.connection).createQuery(`SELECT deviceId FROM devices WHERE lastActivityTime >= '${second}'`);
      assert.ok(
        ((await query.nextAsTwin()).result as Array<{ deviceId: string }>).some((d) => d.deviceId === deviceId),
        'a query on lastActivityTime finds the device',
      );
    });
  }

  test('a cloud-to-device message the device receives moves it; a quiet connected device stays where its connect left it', async () => {
    const deviceId = 'activity-c2d';
    const client = await connected(deviceId, 'mqtt');
    const received = new Promise<deviceSdk.Message>((resolve) => client.on('message', resolve));
    const quiet = await activityAfter(deviceId, NEVER, 'the connect');
    await sleep(1500); // past a write of the activity: nothing to write
    assert.equal((await identity(deviceId)).lastActivityTime, quiet, 'no message, no activity');

    const service = createServiceClient(t.connection);
    try {
      await service.open();
      await service.send(deviceId, c2dMessage('to the device'));
    } finally {
      await service.close();
    }
    await client.complete(await received);
    await activityAfter(deviceId, quiet, 'the message received');
  });

  test('it never goes back: a message written after a later disconnect leaves the later time', () => {
    const store = new IdentityStore(openDatabase(':memory:'));
    const base = { generationId: 'g', etagCounter: 1, status: 'enabled', statusReason: null, statusUpdatedTime: NEVER };
    store.put({
      ...base,
      deviceId: 'd',
      moduleId: '',
      authenticationType: 'sas',
      managedBy: null,
      connectionState: 'Disconnected',
      connectionStateUpdatedTime: NEVER,
      lastActivityTime: NEVER,
      capabilities: { iotEdge: false },
      createdTime: NEVER,
    } as never);
    store.putConnectionStates([{ deviceId: 'd', moduleId: '', state: 'Disconnected', at: '2026-12-02T10:00:02.000Z' }]);
    store.putActivity([{ deviceId: 'd', moduleId: '', at: '2026-12-02T10:00:01.000Z' }]);
    assert.equal(store.get('d')?.lastActivityTime, '2026-12-02T10:00:02.000Z');
    store.putActivity([{ deviceId: 'd', moduleId: '', at: '2026-12-02T10:00:03.000Z' }]);
    store.putConnectionStates([{ deviceId: 'd', moduleId: '', state: 'Connected', at: '2026-12-02T10:00:02.500Z' }]);
    const record = store.get('d')!;
    assert.equal(record.lastActivityTime, '2026-12-02T10:00:03.000Z');
    assert.equal(record.connectionStateUpdatedTime, '2026-12-02T10:00:02.500Z');
  });
});
