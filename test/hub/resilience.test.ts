import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { sendTelemetry, type Confirmation } from '../../src/apps/send-telemetry.js';
import { receiveTwinPatch, type DesiredPatch, type TwinPatchEvent } from '../../src/apps/receive-twin-patch.js';
import { rebootDevice, type RebootEvent } from '../../src/apps/reboot-device.js';
import { portsBelowEphemeral, startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';

// The device-side apps across a hub restart: the hub stops (every connection drops), stays away a
// moment, and starts again on the same port and data dir, as a restarted `hub start` would.

const WAIT_MS = 60_000;

describe('device apps survive a hub restart', () => {
  let t: TestHub;
  before(async () => {
    // Every restart reuses these ports, which no connection is given meanwhile.
    const [port, eventHubPort] = await portsBelowEphemeral(2);
    t = await startTestHub({ dataDir: tempDir(), port, eventHubPort });
  });
  after(async () => {
    await t.dispose();
  });

  /** Stops the hub, waits, starts it again on the same ports and data dir. */
  async function restart(): Promise<void> {
    const { port, eventHubPort } = t.hub;
    await t.stop();
    await sleep(1500);
    t = await startTestHub({ dataDir: t.dataDir, port, eventHubPort });
  }

  test('sendTelemetry finishes, and every message it counted as confirmed is in the event log', async () => {
    const connection = await registerIdentity(t, 'res-tel');
    const confirmed: Confirmation[] = [];
    const reconnects: number[] = [];
    const sending = sendTelemetry([connection], {
      count: 40,
      intervalMs: 100,
      onConfirm: (c) => confirmed.push(c),
      onReconnect: () => reconnects.push(Date.now()),
    });
    await until(() => confirmed.length >= 5, 'some messages are confirmed', WAIT_MS);
    await restart();
    const summary = await sending;
    assert.equal(summary.sent, 40);
    assert.equal(summary.confirmed + summary.failed, 40);
    assert.equal(summary.confirmed, confirmed.length);
    assert.ok(summary.confirmed > 5, `confirmed after the restart too (${summary.confirmed})`);

    const log = t.hub.eventLog;
    const partition = log.partitionOf('res-tel');
    const begin = log.startSequence(partition, { kind: 'earliest' });
    const stored = log
      .read(partition, begin, 10_000)
      .filter((e) => e.annotations['iothub-connection-device-id'] === 'res-tel')
      .map((e) => e.systemProperties.messageId);
    for (const c of confirmed) assert.ok(stored.includes(c.messageId), `${c.messageId} confirmed but not in the event log`);
    // At least once: a resend after the drop may duplicate a message, but never more than that.
    assert.ok(stored.length >= confirmed.length && stored.length <= 40 * 2, `${stored.length} stored`);
  });

  test('receiveTwinPatch reconnects and reports a desired patch written while it was away, then later ones', async () => {
    const connection = await registerIdentity(t, 'res-twin');
    const patches: DesiredPatch[] = [];
    const events: TwinPatchEvent[] = [];
    let ready = false;
    const abort = new AbortController();
    const receiving = receiveTwinPatch(connection, {
      timeoutSeconds: 120,
      signal: abort.signal,
      onReady: () => (ready = true),
      onPatch: (p) => patches.push(p),
      onEvent: (e) => events.push(e),
    });
    await until(() => ready, 'the receiver is subscribed', WAIT_MS);
    const registry = () => createRegistry(t.connection);
    await registry().updateTwin('res-twin', { properties: { desired: { before: 1 } } }, '*');
    await until(() => patches.length === 1, 'the first patch arrives', WAIT_MS);

    // The device retries with backoff, so the patch lands before it is back (or right as it is).
    await restart();
    await registry().updateTwin('res-twin', { properties: { desired: { away: 2 } } }, '*');
    await until(() => patches.some((p) => p.away === 2), 'the patch written while away is reported', WAIT_MS);
    await until(() => events.some((e) => e.event === 'reconnected'), 'the reconnect is reported', WAIT_MS);

    await registry().updateTwin('res-twin', { properties: { desired: { after: 3 } } }, '*');
    await until(() => patches.some((p) => p.after === 3), 'a later patch arrives', WAIT_MS);
    const versions = patches.map((p) => p.$version);
    assert.deepEqual(
      versions,
      [...versions].sort((a, b) => a - b),
      'versions only go up',
    );
    assert.equal(new Set(versions).size, versions.length, `no version reported twice: ${JSON.stringify(patches)}`);
    abort.abort();
    assert.equal((await receiving).received, patches.length);
  });

  test('rebootDevice keeps serving its method after a restart', async () => {
    const connection = await registerIdentity(t, 'res-dm');
    const events: RebootEvent[] = [];
    const abort = new AbortController();
    const serving = rebootDevice(connection, { rebootSeconds: 0, signal: abort.signal, onEvent: (e) => events.push(e) });
    await until(() => events.some((e) => e.event === 'ready'), 'the device is ready', WAIT_MS);
    const invoke = () =>
      createServiceClient(t.connection).invokeDeviceMethod('res-dm', {
        methodName: 'rebootDevice',
        payload: null,
        responseTimeoutInSeconds: 30,
        connectTimeoutInSeconds: 30,
      });
    assert.equal((await invoke()).result.status, 200);
    // A report cut by the drop is only 'reportFailed' (the device keeps serving); wait for it to land.
    await until(() => events.some((e) => e.event === 'reported'), 'the first reboot is reported', WAIT_MS);

    await restart();
    assert.equal((await invoke()).result.status, 200);
    await until(
      () => events.filter((e) => e.event === 'reported').length === 2,
      `the second reboot is reported (${JSON.stringify(events)})`,
      WAIT_MS,
    );
    assert.ok(
      events.some((e) => e.event === 'reconnected'),
      'the reconnect is reported',
    );
    abort.abort();
    assert.equal((await serving).reboots, 2);
  });
  test("the hub keeps a persistent MQTT session's subscriptions: the SDK's own reconnect still gets desired patches", async () => {
    // The SDK connects with clean session 0 and, after reconnecting, does not subscribe again.
    const connection = await registerIdentity(t, 'res-session');
    const client = await openDevice(connection);
    try {
      const twin = await client.getTwin();
      const patches: number[] = [];
      twin.on('properties.desired', (desired: { $version: number }) => patches.push(desired.$version));
      await until(
        () => t.hub.mqtt.isSubscribed({ deviceId: 'res-session' }, '$iothub/twin/PATCH/properties/desired'),
        'the device subscribed',
        WAIT_MS,
      );
      await restart();
      await until(() => t.hub.mqtt.session({ deviceId: 'res-session' }) !== undefined, 'the SDK reconnected by itself', WAIT_MS);
      const after = (await createRegistry(t.connection).updateTwin('res-session', { properties: { desired: { afterRestart: 1 } } }, '*'))
        .responseBody;
      const version = after.properties.desired.$version as number;
      await until(() => patches.includes(version), `the patch to $version ${version} arrived (got ${patches})`, WAIT_MS);
    } finally {
      await client.close();
    }
  });
});
