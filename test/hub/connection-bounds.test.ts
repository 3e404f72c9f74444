import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { earliestEventPosition } from '@azure/event-hubs';
import deviceSdk from 'azure-iot-device';
import type { Connection, EventContext } from 'rhea';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createDeviceClient } from '../../src/clients/device-clients.js';
import { deviceConnectionString, parseConnection } from '../../src/clients/connection-string.js';
import { unauthenticatedBound } from '../../src/hub/unauthenticated-connections.js';
import { EVENT_HUB_NAME } from '../../src/hub/server.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { open, putToken } from '../helpers/amqp.js';
import { collect, consumer, eventually, within } from '../helpers/events.js';

// What anyone may do to the hub's listeners before authenticating: connect and say nothing. Each
// such connection is closed within its listener's bound, and together they are bounded below the
// descriptor limit, so that they cannot keep good clients out.

const HUB_PROCESS = fileURLToPath(new URL('../helpers/hub-process.js', import.meta.url));
const DESCRIPTOR_LIMIT = fileURLToPath(new URL('../../src/hub/descriptor-limit.js', import.meta.url));

/** Resolves once `event` came, or the socket closed first (the hub may close one still handshaking to keep its bound). */
function connected(socket: Socket, event = 'connect'): Promise<Socket> {
  socket.on('error', () => undefined);
  return new Promise((resolve) => {
    socket.once(event, () => resolve(socket));
    socket.once('close', () => resolve(socket));
  });
}

function tcp(port: number): Promise<Socket> {
  return connected(netConnect(port, '127.0.0.1'));
}

function tls(port: number, ca: string): Promise<Socket> {
  return connected(tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }), 'secureConnect');
}

/** Resolves once the hub closed the socket; rejects after `ms`. */
function closedWithin(socket: Socket, ms: number, what: string): Promise<void> {
  socket.resume();
  if (socket.destroyed) return Promise.resolve();
  return within(ms, `the hub to close ${what}`, new Promise((resolve) => socket.once('close', () => resolve())));
}

describe('idle connections at every listener', () => {
  // Short bounds, so that the proof takes seconds; the defaults are IoT Hub's (the test below).
  const timeouts = { handshakeMs: 1000, firstByteMs: 1000, amqpAuthenticationMs: 2000 };
  let t: TestHub;
  before(async () => {
    t = await startTestHub({ connectionTimeouts: timeouts });
  });
  after(() => t.dispose());

  test('are bounded by default as IoT Hub bounds them: 10 s a step at the TLS port, 20 s for a token on AMQP', async () => {
    const defaults = await startTestHub();
    try {
      assert.deepEqual(
        { ...defaults.hub.connectionTimeouts },
        { handshakeMs: 10_000, firstByteMs: 10_000, headersMs: 10_000, mqttConnectMs: 10_000, amqpAuthenticationMs: 20_000 },
      );
    } finally {
      await defaults.dispose();
    }
  });

  test('are closed within their bounds: TCP and TLS that say nothing at the TLS port, TCP and an AMQP client without a token at the AMQP port', async () => {
    const tcpAtTls = await tcp(t.hub.port);
    const tlsAtTls = await tls(t.hub.port, t.hub.tls.ca);
    const tcpAtAmqp = await tcp(t.hub.eventHubPort);
    const noToken: Connection = await open(t.hub.eventHubPort);
    assert.equal(
      await putToken(
        noToken,
        `sb://localhost:${t.hub.eventHubPort}/${EVENT_HUB_NAME}`,
        'SharedAccessSignature sr=x&sig=y&se=1&skn=service',
      ),
      401,
    );
    const noTokenClosed = new Promise<EventContext>((resolve) => noToken.once('connection_close', resolve));
    // Loose for a busy machine, yet below the defaults: these closes are the short bounds' doing.
    await Promise.all([
      closedWithin(tcpAtTls, 8000, 'a silent TCP connection at the TLS port'),
      closedWithin(tlsAtTls, 8000, 'a silent TLS connection'),
      closedWithin(tcpAtAmqp, 15_000, 'a silent TCP connection at the AMQP port'),
      within(15_000, 'the hub to close an AMQP connection without a token', noTokenClosed),
    ]);
    assert.equal((noToken.error as { condition?: string } | undefined)?.condition, 'amqp:unauthorized-access');
  });
});

interface ChildHub {
  child: ChildProcess;
  port: number;
  eventHubPort: number;
  ca: string;
  serviceConnectionString: string;
  eventHubConnectionString: string;
  log: string[];
}

/** The hub in a process of its own whose descriptor limit (soft and hard) is `limit`. */
async function startChildHub(limit: number): Promise<ChildHub> {
  const child = spawn('bash', ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, HUB_PROCESS], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => log.push(line));
  const [line] = (await within(30_000, 'the hub process to start', once(createInterface({ input: child.stdout! }), 'line'))) as [string];
  return { child, log, ...JSON.parse(line) };
}

describe('under a low descriptor limit', () => {
  const limit = 256;
  let hub: ChildHub;
  const hostile: Socket[] = [];
  let closedByHub = 0;
  /** Opens `count` connections that never say a word (half of those at the TLS port complete a handshake first). */
  const openHostile = async (count: number, at: 'amqp' | 'tls'): Promise<void> => {
    await Promise.all(
      Array.from({ length: count }, (_, i) => {
        const socket =
          at === 'amqp'
            ? netConnect(hub.eventHubPort, '127.0.0.1')
            : i % 2
              ? netConnect(hub.port, '127.0.0.1')
              : tlsConnect({ host: '127.0.0.1', port: hub.port, ca: hub.ca, servername: 'localhost' });
        hostile.push(socket);
        socket.resume().once('close', () => closedByHub++);
        return connected(socket, at === 'tls' && i % 2 === 0 ? 'secureConnect' : 'connect');
      }),
    );
  };
  /** Waits (bounded) until the hub has closed all silent connections but the bound. */
  const keptToTheBound = (bound: number): Promise<void> =>
    eventually(30_000, `the hub to close all silent connections but ${bound}`, () => closedByHub >= hostile.length - bound);
  before(async () => {
    hub = await startChildHub(limit);
  });
  after(async () => {
    for (const socket of hostile) socket.destroy();
    hub.child.kill('SIGTERM');
    await within(30_000, 'the hub process to stop', once(hub.child, 'exit'));
  });

  test('idle hostile connections do not keep SDK clients out, nor push out those that authenticated', async () => {
    const bound = unauthenticatedBound(limit);
    // More silent connections than the process has descriptors.
    await openHostile(100, 'tls');
    await openHostile(250, 'amqp');
    await keptToTheBound(bound);
    assert.ok(
      hub.log.some((line) => /had not authenticated/.test(line)),
      'the hub says why it closed them',
    );

    // Good clients get in: REST, devices over MQTT and MQTT over WebSockets, an Event Hubs reader.
    const transport = { ca: hub.ca, port: hub.port };
    const service = parseConnection('service', hub.serviceConnectionString, transport);
    const registry = createRegistry(service);
    const devices = await Promise.all(
      (['mqtt', 'mqtt-ws'] as const).map(async (protocol) => {
        const deviceId = `fd-${protocol}`;
        const identity = (await registry.create({ deviceId })).responseBody;
        const connectionString = deviceConnectionString('localhost', deviceId, identity.authentication!.symmetricKey!.primaryKey!);
        return createDeviceClient(parseConnection('device', connectionString, transport), protocol);
      }),
    );
    const reader = consumer(hub.eventHubConnectionString);
    const events = collect(reader, earliestEventPosition);
    const bodies = () => events.events.map((e) => Buffer.from(e.body as Uint8Array).toString()).sort();
    const connects = devices.map(() => 0); // a device cut off would reconnect by itself: count its connects
    devices.forEach((device, i) => device.on('connect', () => connects[i]!++));
    try {
      for (const device of devices) await device.open();
      for (const [i, device] of devices.entries()) await device.sendEvent(new deviceSdk.Message(`before-${i}`));
      await events.until(30_000, 'the first events', () => events.events.length >= 2);

      // A second wave of silent connections: those that authenticated stay.
      await openHostile(250, 'amqp');
      await keptToTheBound(bound);
      for (const [i, device] of devices.entries()) await device.sendEvent(new deviceSdk.Message(`after-${i}`));
      await events.until(30_000, 'the events after', () => events.events.length >= 4);
      assert.deepEqual(bodies(), ['after-0', 'after-1', 'before-0', 'before-1']);
      assert.deepEqual(events.errors, []);
      assert.deepEqual(connects, [1, 1], 'each device connected once');
      assert.equal((await registry.get('fd-mqtt')).responseBody.deviceId, 'fd-mqtt');
    } finally {
      await events.close();
      await reader.close();
      for (const device of devices) await device.close();
    }
  });
});

describe('the descriptor limit', () => {
  const prlimit = (() => {
    try {
      return execFileSync('sh', ['-c', 'command -v prlimit'], { encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
  })();

  test(
    'a soft limit below the hard one is raised with prlimit, and stays (said in the log) where prlimit is missing',
    { skip: !prlimit && 'prlimit (util-linux) is not installed' },
    () => {
      // Node raises the soft limit as it starts, so the child lowers its own first, as an embedding runtime might leave it.
      const script = `
      import { execFileSync } from 'node:child_process';
      import { raiseDescriptorLimit, readDescriptorLimits } from ${JSON.stringify(DESCRIPTOR_LIMIT)};
      const lines = [];
      const log = { info: (_area, message) => lines.push(message), debug: () => {}, warn: () => {}, error: () => {} };
      const { hard } = readDescriptorLimits();
      execFileSync(${JSON.stringify(prlimit)}, ['--pid', String(process.pid), '--nofile=100:' + hard]);
      const path = process.env.PATH;
      process.env.PATH = '/nonexistent';
      const withoutPrlimit = raiseDescriptorLimit(log);
      process.env.PATH = path;
      const withPrlimit = raiseDescriptorLimit(log);
      console.log(JSON.stringify({ hard, withoutPrlimit, withPrlimit, after: readDescriptorLimits(), lines }));
    `;
      const result = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
      assert.equal(result.withoutPrlimit, 100);
      assert.match(result.lines[0], /stays at 100 .*prlimit \(util-linux\) is not installed; run `ulimit -n \d+`/);
      assert.equal(result.withPrlimit, result.hard);
      assert.equal(result.after.soft, result.hard);
      assert.match(result.lines[1], new RegExp(`raised the descriptor limit from 100 to ${result.hard}`));
    },
  );
});
