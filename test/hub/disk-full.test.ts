import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import type mqtt from 'mqtt';
import deviceSdk from 'azure-iot-device';
import { createLog } from '../../src/hub/log.js';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { parseConnection } from '../../src/clients/connection-string.js';
import { restCall, startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { CliProcess } from '../helpers/cli.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';
import { closed, deviceToken, rawConnect, subscribe } from '../helpers/mqtt.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { mountSmallDisk } from '../helpers/tmpfs.js';

const API = 'api-version=2021-04-12';

/** Each event stored in the hub's log whose body is `body`. */
function storedBodies(t: TestHub): string[] {
  return Array.from({ length: t.hub.eventLog.partitionCount }, (_, p) => t.hub.eventLog.read(p, 0, 100_000))
    .flat()
    .map((e) => e.body.toString());
}

/** A raw MQTT publish at QoS 1: 'acked', or 'closed' when the hub closed the connection instead. */
function publishOutcome(client: mqtt.MqttClient, topic: string, payload: string): Promise<'acked' | 'closed'> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('neither a PUBACK nor a close within 30 s')), 30_000);
    client.once('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
    client.publish(topic, payload, { qos: 1 }, (err) => {
      if (err) return; // the close says it
      clearTimeout(timer);
      resolve('acked');
    });
  });
}

/** The status of a reported-properties patch over raw MQTT, from the response topic. */
async function reportedPatchStatus(client: mqtt.MqttClient, rid: string, patch: unknown): Promise<number> {
  const answer = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no twin response within 30 s')), 30_000);
    const onMessage = (topic: string) => {
      const match = /^\$iothub\/twin\/res\/(\d+)\/\?\$rid=([^&]+)/.exec(topic);
      if (match?.[2] !== rid) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(Number(match[1]));
    };
    client.on('message', onMessage);
  });
  client.publish(`$iothub/twin/PATCH/properties/reported/?$rid=${rid}`, JSON.stringify(patch), { qos: 0 });
  return answer;
}

test('a full disk: writes fail as IoT Hub fails them, reads and methods go on, one log line, and writes resume once there is room', async (t) => {
  const disk = mountSmallDisk(24);
  if (typeof disk === 'string') return t.skip(disk);
  const lines: string[] = [];
  const dataDir = join(disk.dir, 'hub');
  let hub: TestHub | undefined;
  const clients: Array<{ close(): unknown }> = [];
  try {
    hub = await startTestHub({ dataDir, log: createLog('info', (line) => lines.push(line)) });
    const registry = createRegistry(hub.connection);
    const sender = await openDevice(await registerIdentity(hub, 'full-sender'));
    const answering = await openDevice(await registerIdentity(hub, 'full-methods'));
    clients.push(sender, answering);
    answering.onDeviceMethod('ping', (_req, res) => res.send(200, { pong: true }));
    const keys = new Map<string, string>();
    for (const deviceId of ['full-raw', 'full-flap']) {
      keys.set(deviceId, (await registry.create({ deviceId })).responseBody.authentication!.symmetricKey!.primaryKey!);
    }
    const rawDevice = async (deviceId = 'full-raw') => {
      const client = await rawConnect(hub!.hub, { deviceId }, deviceToken({ deviceId }, keys.get(deviceId)!));
      assert.notEqual(typeof client, 'number', `${deviceId} connects`);
      clients.push({ close: () => (client as mqtt.MqttClient).end(true) });
      return client as mqtt.MqttClient;
    };
    for (let i = 0; i < 3; i++) await sender.sendEvent(new deviceSdk.Message(`before-${i}`));

    disk.fill();

    // MQTT: no PUBACK, and the connection is closed.
    const raw = await rawDevice();
    assert.equal(await publishOutcome(raw, 'devices/full-raw/messages/events/', 'while-full'), 'closed');
    // The SDK device, unchanged: its send is not acknowledged while the disk is full (its retry policy resends).
    let sentWhileFull = false;
    const sending = sender.sendEvent(new deviceSdk.Message('sent-while-full')).then(() => (sentWhileFull = true));
    sending.catch(() => undefined); // awaited below; a failure before then is not unhandled
    // REST: IoT Hub's 503 with its error body.
    const refused = await restCall(hub, 'PUT', `/devices/full-new?${API}`, hubToken(hub), JSON.stringify({ deviceId: 'full-new' }));
    assert.equal(refused.status, 503);
    assert.equal(refused.body.errorCode, 503001);
    assert.match(refused.body.Message, /^ErrorCode:ServiceUnavailable;.*disk is full/);
    await assert.rejects(
      registry.create({ deviceId: 'full-sdk' }),
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 503,
    );
    // A twin update over MQTT: an error status on the response topic, the connection stays.
    const twinClient = await rawDevice();
    await subscribe(twinClient, ['$iothub/twin/res/#']);
    assert.equal(await reportedPatchStatus(twinClient, 'r1', { full: true }), 503);
    assert.equal(twinClient.connected, true);
    // Reads and direct methods go on.
    assert.equal((await registry.get('full-methods')).responseBody.deviceId, 'full-methods');
    assert.equal((await registry.getTwin('full-methods')).responseBody.deviceId, 'full-methods');
    assert.equal(typeof (await answering.getTwin()).properties.desired.$version, 'number');
    const { result } = await createServiceClient(hub.connection).invokeDeviceMethod('full-methods', {
      methodName: 'ping',
      payload: null,
      responseTimeoutInSeconds: 30,
    });
    assert.deepEqual(result, { status: 200, payload: { pong: true } });
    // Connects and disconnects (connection state is written later) do not take the hub down.
    const flapping = await rawDevice('full-flap');
    flapping.end(true);
    await closed(flapping);
    await new Promise((r) => setTimeout(r, 1500)); // a few connection-state flushes, and the retry timer, run
    assert.equal(sentWhileFull, false, 'nothing is acknowledged while the disk is full');
    assert.ok(!storedBodies(hub).includes('while-full'));

    const fullLines = lines.filter((l) => / error +store: .*disk .* is full/.test(l));
    assert.equal(fullLines.length, 1, `one line says the disk is full: ${lines.join('')}`);
    assert.ok(fullLines[0]!.includes(dataDir), 'it says where');

    disk.free();
    await until(() => lines.some((l) => /room again/.test(l)), 'the hub sees room again', 30_000);
    await sending; // the SDK's resend is acknowledged now
    assert.equal((await registry.create({ deviceId: 'full-after' })).responseBody.deviceId, 'full-after');
    const after = await rawDevice();
    assert.equal(await publishOutcome(after, 'devices/full-raw/messages/events/', 'after'), 'acked');
    await subscribe(after, ['$iothub/twin/res/#']);
    assert.equal(await reportedPatchStatus(after, 'r2', { full: false }), 204);
    // Nothing acknowledged was lost; what was refused is not there.
    const bodies = storedBodies(hub);
    for (const body of ['before-0', 'before-1', 'before-2', 'sent-while-full', 'after'])
      assert.ok(bodies.includes(body), `${body} is stored`);
    assert.ok(!bodies.includes('while-full'));
    // The connection state kept while the disk was full has been written.
    const flap = (await registry.get('full-flap')).responseBody;
    assert.equal(flap.connectionState, 'Disconnected');
    assert.notEqual(flap.connectionStateUpdatedTime, '0001-01-01T00:00:00Z', 'its connect and disconnect are recorded');
  } finally {
    for (const client of clients) await client.close();
    await hub?.stop();
    disk.unmount();
  }
});

/** An iothubowner token for REST calls made without the SDK. */
function hubToken(t: TestHub): string {
  const policy = t.hub.auth.policy('iothubowner')!;
  return createSasToken(t.hub.hostName, policy.primaryKey, policy.keyName, 600);
}

/** `hub start` on `dataDir` as a subprocess; resolves once it has started, with a registry on it. */
async function startHubProcess(home: string, dataDir: string) {
  const process = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--data-dir', dataDir, '--json', '--show-secrets'], {
    IOTHUB_TUT_HOME: home,
  });
  const started = await process.waitFor((l) => l.event === 'started');
  const ca = readFileSync(started.caFile, 'utf8');
  const connection = parseConnection('service', started.serviceConnectionString, { ca, port: started.port });
  return { process, connection, address: { port: started.port as number, tls: { ca } }, registry: createRegistry(connection) };
}

test('hub start on a disk that is still full: after a crash it starts and serves, and with no room to open its database it says so in one line', async (t) => {
  const disk = mountSmallDisk(24);
  if (typeof disk === 'string') return t.skip(disk);
  const home = tempDir();
  const dataDir = join(disk.dir, 'hub');
  const processes: CliProcess[] = [];
  try {
    const first = await startHubProcess(home, dataDir);
    processes.push(first.process);
    const key = (await first.registry.create({ deviceId: 'restart-dev' })).responseBody.authentication!.symmetricKey!.primaryKey!;
    disk.fill();
    first.process.child.kill('SIGKILL'); // as the hub that died of a full disk did
    await first.process.exit();

    const second = await startHubProcess(home, dataDir);
    processes.push(second.process);
    const address = second.address;
    // Connects and disconnects, whose connection state cannot be written: the hub stays up.
    for (let i = 0; i < 3; i++) {
      const device = await rawConnect(address, { deviceId: 'restart-dev' }, deviceToken({ deviceId: 'restart-dev' }, key));
      assert.notEqual(typeof device, 'number', 'the device connects');
      (device as mqtt.MqttClient).end(true);
    }
    await assert.rejects(
      second.registry.create({ deviceId: 'restart-new' }),
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 503,
    );
    assert.equal((await second.registry.get('restart-dev')).responseBody.deviceId, 'restart-dev');
    await new Promise((r) => setTimeout(r, 3000)); // the hub died 1.5 s after such a start
    assert.equal(second.process.child.exitCode, null, `the hub is still running; stderr: ${second.process.stderr}`);
    assert.equal(await second.process.stop(), 0, `a clean stop; stderr: ${second.process.stderr}`);
    assert.doesNotMatch(second.process.stderr, /^\s+at /m, 'no stack trace');

    // With not a byte left, not even for SQLite's shared-memory index: one line, exit 8.
    rmSync(`${join(dataDir, 'hub.db')}-shm`, { force: true });
    disk.fill();
    const third = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--data-dir', dataDir], { IOTHUB_TUT_HOME: home });
    processes.push(third);
    assert.equal(await third.exit(), 8, third.stderr);
    assert.match(third.stderr, /^error: the disk holding .* is full .*free some space, then start the hub again\n$/);
  } finally {
    for (const { child } of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
    disk.unmount();
  }
});
