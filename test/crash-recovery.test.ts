import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type mqtt from 'mqtt';
import { createRegistry, type HubConnection } from '../src/clients/service-clients.js';
import { CliProcess } from './helpers/cli.js';
import { tempDir } from './helpers/hub.js';
import { deviceToken, rawConnect, subscribe } from './helpers/mqtt.js';

const RUN_BEFORE_KILL_MS = 2000;

async function startHub(home: string, dataDir: string): Promise<{ process: CliProcess; connection: HubConnection; address: { port: number; tls: { ca: string } } }> {
  const hub = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--data-dir', dataDir, '--json', '--show-secrets'], { IOTHUB_TUT_HOME: home });
  const started = await hub.waitFor((l) => l.event === 'started');
  const ca = readFileSync(started.caFile, 'utf8');
  return { process: hub, connection: { connectionString: started.serviceConnectionString, transport: { ca, port: started.port } }, address: { port: started.port, tls: { ca } } };
}

/** Reported patches over raw MQTT; resolves with the highest `n` whose 204 arrived before the connection died. */
async function reportUntilKilled(client: mqtt.MqttClient): Promise<number> {
  await subscribe(client, ['$iothub/twin/res/#']);
  let acked = 0;
  for (let n = 1; ; n++) {
    const ok = await new Promise<boolean>((resolve) => {
      const onMessage = (topic: string) => {
        if (!topic.includes(`$rid=${n}&`) && !topic.endsWith(`$rid=${n}`)) return;
        cleanup();
        resolve(topic.startsWith('$iothub/twin/res/204/'));
      };
      const onClose = () => (cleanup(), resolve(false));
      const cleanup = () => client.off('message', onMessage).off('close', onClose);
      client.on('message', onMessage).once('close', onClose);
      client.publish(`$iothub/twin/PATCH/properties/reported/?$rid=${n}`, JSON.stringify({ n }));
    });
    if (!ok) return acked;
    acked = n;
  }
}

test('kill -9 mid-stream: every acknowledged identity, desired patch and reported patch is there after a restart', async () => {
  const home = tempDir();
  const dataDir = join(home, 'data');
  try {
    let hub = await startHub(home, dataDir);
    const registry = createRegistry(hub.connection);
    const reporterKey = (await registry.create({ deviceId: 'crash-reporter' })).responseBody.authentication!.symmetricKey!.primaryKey;
    const reporter = await rawConnect(hub.address, { deviceId: 'crash-reporter' }, deviceToken({ deviceId: 'crash-reporter' }, reporterKey));
    assert.ok(typeof reporter !== 'number', `reporter connected (CONNACK ${reporter})`);

    const created: string[] = [];
    const desired = new Map<string, number>();
    let killed = false;
    const writer = async (lane: number) => {
      for (let i = 0; !killed && i < 300; i++) { // at most 900 devices: one `list` page holds them all
        const deviceId = `crash-${lane}-${i}`;
        try {
          await registry.create({ deviceId });
          created.push(deviceId);
          await registry.updateTwin(deviceId, { properties: { desired: { seq: i, lane } } }, '*');
          desired.set(deviceId, i);
        } catch {
          return; // the hub is gone: what was not acknowledged need not survive
        }
      }
    };
    const writers = [writer(0), writer(1), writer(2)];
    const reporting = reportUntilKilled(reporter);

    await new Promise((r) => setTimeout(r, RUN_BEFORE_KILL_MS));
    killed = true;
    hub.process.child.kill('SIGKILL');
    await hub.process.exit();
    await Promise.all(writers);
    const lastReported = await reporting;
    reporter.end(true);
    assert.ok(created.length > 0 && desired.size > 0 && lastReported > 0, `writes were acknowledged before the kill (${created.length}, ${desired.size}, ${lastReported})`);

    hub = await startHub(home, dataDir);
    try {
      const after = createRegistry(hub.connection);
      const devices = new Set((await after.list()).responseBody.map((d) => d.deviceId));
      const lost = created.filter((id) => !devices.has(id));
      assert.deepEqual(lost, [], 'no acknowledged identity is lost');
      for (const [deviceId, seq] of desired) {
        assert.equal((await after.getTwin(deviceId)).responseBody.properties.desired.seq, seq, `desired of ${deviceId}`);
      }
      const reported = (await after.getTwin('crash-reporter')).responseBody.properties.reported;
      assert.ok(reported.n >= lastReported, `reported n ${reported.n} >= last acknowledged ${lastReported}`);
    } finally {
      assert.equal(await hub.process.stop(), 0);
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
