import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type mqtt from 'mqtt';
import { createRegistry } from '../../src/clients/service-clients.js';
import { parseConnection } from '../../src/clients/connection-string.js';
import { CliProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/hub.js';
import { deviceToken, rawConnect } from '../helpers/mqtt.js';

/** The hub's own handlers, made to throw on cue (see the fixture). */
const FAULTY = pathToFileURL(join(import.meta.dirname, '..', 'fixtures', 'faulty-handlers.js')).href;

async function startFaultyHub(home: string) {
  const hub = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--in-memory', '--json', '--show-secrets'], {
    IOTHUB_TUT_HOME: home,
    NODE_OPTIONS: `--import=${FAULTY}`,
  });
  const started = await hub.waitFor((l) => l.event === 'started');
  const ca = readFileSync(started.caFile, 'utf8');
  const registry = createRegistry(parseConnection('service', started.serviceConnectionString, { ca, port: started.port }));
  const connect = async (deviceId: string) => {
    const key = (await registry.create({ deviceId })).responseBody.authentication!.symmetricKey!.primaryKey!;
    const client = await rawConnect({ port: started.port, tls: { ca } }, { deviceId }, deviceToken({ deviceId }, key));
    assert.notEqual(typeof client, 'number', `${deviceId} connects`);
    return client as mqtt.MqttClient;
  };
  return { hub, registry, connect };
}

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('hub start: a handler that throws, or a rejection nobody handles, is logged and the hub keeps serving', async () => {
  const home = tempDir();
  const { hub, registry, connect } = await startFaultyHub(home);
  const clients: mqtt.MqttClient[] = [];
  try {
    clients.push(await connect('throws-1'));
    await until(() => hub.stderr.includes('a handler threw for throws-1'), 'the exception is logged');
    clients.push(await connect('rejects-1'));
    await until(() => hub.stderr.includes('a handler rejected for rejects-1'), 'the rejection is logged');
    assert.match(
      hub.stderr,
      / error +hub: an exception that nothing handled; the hub goes on: Error: a handler threw for throws-1\n\s+at /,
    );
    assert.match(
      hub.stderr,
      / error +hub: a promise rejection that nothing handled; the hub goes on: Error: a handler rejected for rejects-1\n/,
    );
    // Still serving: REST, a new connection, and an acknowledged publish.
    const ok = await connect('ok-1');
    clients.push(ok);
    await new Promise<void>((resolve, reject) =>
      ok.publish('devices/ok-1/messages/events/', 'still here', { qos: 1 }, (err) => (err ? reject(err) : resolve())),
    );
    assert.equal((await registry.get('throws-1')).responseBody.deviceId, 'throws-1');
    assert.equal(hub.child.exitCode, null);
    assert.equal(await hub.stop(), 0, hub.stderr);
  } finally {
    for (const client of clients) client.end(true);
    if (hub.child.exitCode === null) hub.child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  }
});

test('hub start: a storm of unexpected errors stops the hub cleanly, with one line that says so', async () => {
  const home = tempDir();
  const { hub, connect } = await startFaultyHub(home);
  let client: mqtt.MqttClient | undefined;
  try {
    client = await connect('storm-1');
    assert.equal(await hub.exit(), 1, hub.stderr);
    const errorLines = hub.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.deepEqual(errorLines.length, 1, hub.stderr);
    assert.match(
      errorLines[0]!,
      /^error: the hub stopped: 50 unexpected errors within 10 s, the last: a handler throws again and again \(the hub log has each one\)$/,
    );
    assert.ok(!existsSync(join(home, 'profile.json')), 'the hub removed its profile: other commands do not look for it');
  } finally {
    client?.end(true);
    if (hub.child.exitCode === null) hub.child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  }
});
