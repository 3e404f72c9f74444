import { test, describe, before, after } from 'node:test';
import type { IdentityInput } from '../../src/hub/registry/identity-input.js';
import assert from 'node:assert/strict';
import { Agent } from 'node:https';
import type mqtt from 'mqtt';
import type { Client } from 'aedes';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { createLog } from '../../src/hub/log.js';
import { restCall, startTestHub, type TestHub } from '../helpers/hub.js';
import { deviceToken, rawClient } from '../helpers/mqtt.js';

// Revocation is final: once a rekey, disable or delete is acknowledged, no connection made with
// the identity's old credentials is open or completes its connect, however the two interleave.

type Revocation = 'rekey' | 'disable' | 'delete';
const REVOCATIONS: Revocation[] = ['rekey', 'disable', 'delete'];
// Per revocation, half over TLS and half over WebSockets, spread over a connect's length; the pinned
// tests below take each step of the connect path in turn.
const TRIALS = 24;
const CLOSE_BOUND_MS = 10_000;
const API = 'api-version=2021-04-12';
const newKey = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');

/** A raw client's story: whether its connect completed, when it closed, which of its publishes were acknowledged. */
interface Watched {
  client: mqtt.MqttClient;
  connacked: boolean;
  isClosed: boolean;
  closed: Promise<void>;
  acked: string[];
}

function watch(client: mqtt.MqttClient): Watched {
  const watched: Watched = { client, connacked: false, isClosed: false, closed: undefined!, acked: [] };
  watched.closed = new Promise((resolve) => client.once('close', () => resolve()));
  void watched.closed.then(() => (watched.isClosed = true));
  client.on('connect', () => (watched.connacked = true));
  client.on('error', () => {}); // a refused connect: what a revoked identity should get
  return watched;
}

/**
 * Publishes a marked QoS 1 message as soon as (and if ever) the client is connected; records its PUBACK.
 * `identity` is a device id, or `{deviceId}/modules/{moduleId}`.
 */
function publishWhenConnected(watched: Watched, identity: string, marker: string): void {
  const send = () =>
    watched.client.publish(`devices/${identity}/messages/events/`, marker, { qos: 1 }, (err) => {
      if (!err) watched.acked.push(marker);
    });
  if (watched.client.connected) send();
  else watched.client.once('connect', send);
}

function closedWithin(watched: Watched, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void watched.closed.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('revocation: no connection outlives the credentials it was made with', () => {
  let t: TestHub;
  let agent: Agent;
  let owner: string;
  const rest = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
    restCall(t, method, `${path}?${API}`, owner, body === undefined ? undefined : JSON.stringify(body), { agent, headers });

  async function createDevice(deviceId: string): Promise<string> {
    const created = await rest('PUT', `/devices/${deviceId}`, { deviceId });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    return created.body.authentication.symmetricKey.primaryKey;
  }

  /** The REST call of each revocation, as a back end makes it. */
  function revokeOverRest(revocation: Revocation, deviceId: string): Promise<{ status: number; body: any }> {
    if (revocation === 'delete') return rest('DELETE', `/devices/${deviceId}`);
    const change =
      revocation === 'disable'
        ? { status: 'disabled' }
        : { authentication: { type: 'sas', symmetricKey: { primaryKey: newKey(), secondaryKey: newKey() } } };
    return rest('PUT', `/devices/${deviceId}`, { deviceId, ...change }, { 'If-Match': '*' });
  }

  /** The same change made on the registry directly, synchronously, from inside the hub's connect path. */
  function revokeNow(revocation: Revocation, deviceId: string): void {
    if (revocation === 'delete') return t.hub.registry.delete({ deviceId }, '*');
    const change: IdentityInput = revocation === 'disable' ? { status: 'disabled' } : { primaryKey: newKey(), secondaryKey: newKey() };
    t.hub.registry.createOrUpdate({ deviceId }, change, '*');
  }

  /** Every event body the hub stored that carries `prefix`. */
  function storedWith(prefix: string): string[] {
    const bodies: string[] = [];
    for (let partition = 0; partition < t.hub.eventLog.partitionCount; partition++) {
      for (const event of t.hub.eventLog.read(partition, 0, 100_000)) {
        const body = Buffer.from(event.body).toString();
        if (body.startsWith(prefix)) bodies.push(body);
      }
    }
    return bodies;
  }

  /** Clients the broker still lists although their connection is gone (a connect closed half-way). */
  function deadBrokerClients(): string[] {
    const clients = (t.hub.mqtt.broker as unknown as { clients: Record<string, Client> }).clients;
    return Object.values(clients)
      .filter((c) => c.closed)
      .map((c) => c.id);
  }

  /** How long a connect takes on this machine now, to spread the races over its whole length. */
  const connectMs = { tls: 0, ws: 0 };
  async function timeConnect(webSocket: boolean, n: number): Promise<number> {
    const deviceId = `timing-${webSocket ? 'ws' : 'tls'}-${n}`;
    const key = await createDevice(deviceId);
    const started = performance.now();
    const watched = watch(rawClient(t.hub, { deviceId }, deviceToken({ deviceId }, key), { webSocket }));
    await new Promise((resolve) => watched.client.once('connect', resolve));
    const ms = performance.now() - started;
    watched.client.end(true);
    return ms;
  }

  const logLines: string[] = [];
  before(async () => {
    t = await startTestHub({ log: createLog('info', (line) => logLines.push(line)) });
    const policy = t.hub.auth.policy('iothubowner')!;
    owner = createSasToken('localhost', policy.primaryKey, 'iothubowner', 3600);
    agent = new Agent({ keepAlive: true, ca: t.hub.tls.ca, maxSockets: 4 });
    for (let i = 0; i < 3; i++) {
      connectMs.tls = Math.min(connectMs.tls || Infinity, await timeConnect(false, i));
      connectMs.ws = Math.min(connectMs.ws || Infinity, await timeConnect(true, i));
    }
  });
  after(async () => {
    agent.destroy();
    await t.dispose();
  });

  for (const revocation of REVOCATIONS) {
    test(`${revocation}: in ${TRIALS} races over REST, every old-credential connection is closed and no later publish is acknowledged or stored`, async (ctx) => {
      const raced: Array<{ deviceId: string; watched: Watched }> = [];
      for (let i = 0; i < TRIALS; i++) {
        const deviceId = `race-${revocation}-${i}`;
        const key = await createDevice(deviceId);
        const webSocket = i % 2 === 1;
        // The REST call goes out while the connect is under way, spread over the later part of its usual length
        // (the identity check and the session going live are near its end).
        const lagMs = connectMs[webSocket ? 'ws' : 'tls'] * (0.2 + 0.9 * (Math.floor(i / 2) / (TRIALS / 2)));
        const watched = watch(rawClient(t.hub, { deviceId }, deviceToken({ deviceId }, key), { webSocket }));
        await new Promise((resolve) => setTimeout(resolve, lagMs));
        const answered = await revokeOverRest(revocation, deviceId);
        assert.ok([200, 204].includes(answered.status), `the ${revocation} was acknowledged (${answered.status})`);
        // From here on the old credentials are void: a publish must get no PUBACK, the connection must go.
        publishWhenConnected(watched, deviceId, `after-${deviceId}`);
        raced.push({ deviceId, watched });
      }
      const closedInTime = await Promise.all(raced.map(({ watched }) => closedWithin(watched, CLOSE_BOUND_MS)));
      for (const { watched } of raced) watched.client.end(true);
      const survivors = raced.filter((_, i) => !closedInTime[i]).map(({ deviceId }) => deviceId);
      const lateAcks = raced.flatMap(({ watched }) => watched.acked);
      const completedThenClosed = raced.filter(({ watched }) => watched.connacked).length;
      ctx.diagnostic(
        `${completedThenClosed} of ${TRIALS} connects got their CONNACK before the ${revocation} took effect and were then closed ` +
          `(a connect took ${connectMs.tls.toFixed(1)} ms over TLS, ${connectMs.ws.toFixed(1)} ms over WebSockets)`,
      );
      assert.deepEqual(survivors, [], `connections still open ${CLOSE_BOUND_MS} ms after the ${revocation} was acknowledged`);
      assert.deepEqual(lateAcks, [], 'publishes acknowledged after the revocation');
      assert.deepEqual(storedWith(`after-race-${revocation}-`), [], 'publishes stored after the revocation');
      assert.equal(t.hub.mqtt.connectedCount(), 0, 'no session is left live');
      assert.deepEqual(deadBrokerClients(), [], 'no closed client is left registered in the broker');
    });
  }

  // The same interleavings, pinned: the revocation lands at each step of the hub's connect path. Right
  // after the token was checked ('authenticated': the broker's authenticate hook, wrapped), when the
  // broker registers the client before its CONNACK ('client'), and after the CONNACK, before the session
  // goes live ('connackSent').
  for (const revocation of REVOCATIONS) {
    for (const step of ['authenticated', 'client', 'connackSent'] as const) {
      for (const webSocket of [false, true]) {
        test(`${revocation} at the connect's '${step}' step over ${webSocket ? 'WebSockets' : 'TLS'}: the connection is closed and its publish refused`, async () => {
          const deviceId = `pinned-${revocation}-${step}-${webSocket ? 'ws' : 'tls'}`;
          const key = await createDevice(deviceId);
          const undo = atConnectStep(step, deviceId, () => revokeNow(revocation, deviceId));
          const watched = watch(rawClient(t.hub, { deviceId }, deviceToken({ deviceId }, key), { webSocket }));
          try {
            publishWhenConnected(watched, deviceId, `pinned-after-${deviceId}`);
            assert.ok(await closedWithin(watched, CLOSE_BOUND_MS), 'the connection was closed');
            assert.deepEqual(watched.acked, []);
            assert.equal(t.hub.mqtt.session({ deviceId }), undefined);
            assert.deepEqual(deadBrokerClients(), [], 'no closed client is left registered in the broker');
          } finally {
            undo();
            watched.client.end(true);
          }
        });
      }
    }
  }

  test("disabling a device closes its modules' connections that are still connecting, and says so in the log", async () => {
    const deviceId = 'pinned-disable-modules';
    await createDevice(deviceId);
    const created = await rest('PUT', `/devices/${deviceId}/modules/m1`, { deviceId, moduleId: 'm1' });
    const moduleKey = created.body.authentication.symmetricKey.primaryKey;
    const undo = atConnectStep('authenticated', `${deviceId}/m1`, () => revokeNow('disable', deviceId));
    const watched = watch(rawClient(t.hub, { deviceId, moduleId: 'm1' }, deviceToken({ deviceId, moduleId: 'm1' }, moduleKey)));
    try {
      publishWhenConnected(watched, `${deviceId}/modules/m1`, `pinned-after-${deviceId}`);
      assert.ok(await closedWithin(watched, CLOSE_BOUND_MS), 'the connection was closed');
      assert.deepEqual(watched.acked, []);
      assert.equal(t.hub.mqtt.session({ deviceId, moduleId: 'm1' }), undefined);
      assert.ok(
        logLines.some((line) => line.includes(`info  auth: Closed 1 connection(s) of ${deviceId}: it was disabled`)),
        logLines.join(''),
      );
    } finally {
      undo();
      watched.client.end(true);
    }
  });

  /** Runs `action` once, when the hub's connect of `clientId` reaches `step`; returns the undo. */
  function atConnectStep(step: 'authenticated' | 'client' | 'connackSent', clientId: string, action: () => void): () => void {
    const broker = t.hub.mqtt.broker;
    if (step === 'authenticated') {
      const authenticate = broker.authenticate;
      broker.authenticate = (client, username, password, done) =>
        authenticate.call(broker, client, username, password, (err, ok) => {
          done(err, ok);
          if (ok && client.id === clientId) action();
        });
      return () => (broker.authenticate = authenticate);
    }
    const events = broker as unknown as NodeJS.EventEmitter;
    const listener = (...args: unknown[]) => {
      if (!args.some((a) => (a as Client | undefined)?.id === clientId)) return;
      events.off(step, listener);
      action();
    };
    events.on(step, listener);
    return () => events.off(step, listener);
  }
});
