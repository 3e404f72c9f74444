import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import deviceSdk from 'azure-iot-device';
import { parseConnection } from '../../src/clients/connection-string.js';
import type { DeviceTransport } from '../../src/clients/device-clients.js';
import { consumer, within } from '../helpers/events.js';
import { openDevice, registerIdentity } from '../helpers/devices.js';
import type { TestHub } from '../helpers/hub.js';

// The hub loads rhea with its first AMQP connection and ws with its first WebSocket upgrade, not at
// import (src/hub/load-on-first-use.ts). A hub in a process of its own gets the first connection of
// each kind right after its start: each must be served as any later one.

const LAZY = ['rhea', 'ws'];

interface ChildHub {
  connection: TestHub['connection'];
  eventHub: string;
  /** The packages the hub's process has loaded: at the start, or now. */
  loadedAtStart: string[];
  loadedNow(): Promise<string[]>;
  stop(): Promise<void>;
}

async function startChildHub(): Promise<ChildHub> {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [fileURLToPath(new URL('../helpers/hub-child.js', import.meta.url))],
    {
      stdio: 'pipe',
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (what: string): Promise<any> => {
    const { value, done } = await within(60_000, what, lines.next());
    if (done) throw new Error(`the hub's process ended before ${what}: ${stderr}`);
    return JSON.parse(value);
  };
  const started = await next('the hub to start');
  return {
    connection: parseConnection('service', started.service, { ca: started.ca, port: started.port }),
    eventHub: started.eventHub,
    loadedAtStart: started.loaded,
    loadedNow: async () => {
      child.stdin.write('loaded\n');
      return next('the packages loaded');
    },
    stop: async () => {
      const exited = once(child, 'exit');
      child.stdin.end();
      const [code] = await within(30_000, "the hub's process to exit", exited);
      assert.equal(code, 0, stderr);
    },
  };
}

/** A device of `transport` connects and sends a message the hub acknowledges. */
async function deviceSends(hub: ChildHub, transport: DeviceTransport): Promise<void> {
  const device = await openDevice(await registerIdentity({ connection: hub.connection } as TestHub, `first-${transport}`), transport);
  try {
    await within(30_000, 'the message to be acknowledged', device.sendEvent(new deviceSdk.Message('{"first":true}')));
  } finally {
    await device.close();
  }
}

test('a started hub has loaded neither rhea nor ws; the first connection of each kind loads what it needs and is served', async () => {
  const hub = await startChildHub();
  const lazyLoaded = async () => {
    const loaded = await hub.loadedNow();
    return LAZY.filter((name) => loaded.includes(name));
  };
  try {
    assert.deepEqual(
      LAZY.filter((name) => hub.loadedAtStart.includes(name)),
      [],
      'importing and starting the hub loads none of them',
    );
    assert.ok(hub.loadedAtStart.includes('aedes'), 'the check sees the packages the hub did load');

    // One kind after the other, each the first of its kind on this hub: the first WebSocket upgrade,
    // the first connection to each AMQP endpoint (each makes its rhea container then), AMQP over WebSockets.
    await deviceSends(hub, 'mqtt-ws');
    assert.deepEqual(await lazyLoaded(), ['ws'], 'MQTT over WebSockets loads ws alone');

    const client = consumer(hub.eventHub);
    try {
      const properties = await within(30_000, "the event hub's properties", client.getEventHubProperties());
      assert.equal(properties.partitionIds.length, 4);
    } finally {
      await client.close();
    }
    assert.deepEqual(await lazyLoaded(), ['rhea', 'ws'], 'the Event Hubs-compatible endpoint loads rhea');

    await deviceSends(hub, 'amqp'); // AMQPS on the TLS port
    await deviceSends(hub, 'amqp-ws');
    assert.deepEqual(await lazyLoaded(), ['rhea', 'ws'], 'AMQP devices load nothing more');
  } finally {
    await hub.stop();
  }
});
