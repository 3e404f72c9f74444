import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as netConnect, type Socket } from 'node:net';
import { request } from 'node:https';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createDeviceClient } from '../../src/clients/device-clients.js';
import { identityConnectionWithKey } from '../../src/clients/connection-string.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { MqttFrameGuard } from '../../src/hub/device-gateway/frame-guard.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { deviceToken, rawConnect } from '../helpers/mqtt.js';

const SEED = 0x10ab17;
/** The hub's bounds on a connection that has not said who it is: 1 s here (IoT Hub's are 10 s), so that closes come soon. */
const CONNECTION_TIMEOUTS = { handshakeMs: 5000, firstByteMs: 1000, headersMs: 1000, mqttConnectMs: 1000 };
const CLOSE_WAIT_MS = 30_000; // only stops a hung test

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(random: () => number, length: number): Buffer {
  return Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
}

/** An MQTT variable byte integer (the remaining length of a fixed header). */
function varint(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

function tls(t: TestHub): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: t.hub.port, ca: t.hub.tls.ca, servername: 'localhost' }, () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Resolves with how long the server took to close the connection; rejects after `ms`. */
function closedWithin(socket: Socket, ms = CLOSE_WAIT_MS): Promise<number> {
  const started = Date.now();
  socket.on('error', () => undefined);
  socket.resume(); // drain whatever the server answers
  if (socket.destroyed) return Promise.resolve(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the hub kept the connection open for ${ms} ms`));
    }, ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

function https(
  t: TestHub,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string },
): Promise<{ status: number; body: string }> {
  const policy = t.hub.auth.policy('iothubowner')!;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: t.hub.port,
        ca: t.hub.tls.ca,
        servername: 'localhost',
        method: options.method ?? 'GET',
        path: options.path,
        agent: false,
        headers: {
          Authorization: createSasToken('localhost', policy.primaryKey, 'iothubowner', 600),
          'Content-Type': 'application/json',
          ...options.headers,
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: text }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('MQTT frame guard', () => {
  test('follows frames across chunks and refuses only a frame above the limit or a 5-byte length', () => {
    const guard = new MqttFrameGuard(1000);
    const frame = Buffer.concat([Buffer.from([0x30]), varint(900), Buffer.alloc(900)]);
    assert.equal(guard.feed(frame.subarray(0, 2)), true);
    assert.equal(guard.feed(Buffer.concat([frame.subarray(2), frame])), true);
    assert.equal(guard.feed(Buffer.concat([Buffer.from([0x30]), varint(1001)])), false);
    assert.equal(new MqttFrameGuard().feed(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01])), false);
  });
});

describe('fuzz: malformed traffic at the TLS port (seeded, bounded, loopback)', () => {
  let t: TestHub;
  let key: string;
  before(async () => {
    t = await startTestHub({ connectionTimeouts: CONNECTION_TIMEOUTS });
    const registry = createRegistry(t.connection);
    key = (await registry.create({ deviceId: 'fuzz-keeper' })).responseBody.authentication!.symmetricKey!.primaryKey;
    await registry.updateTwin('fuzz-keeper', { properties: { desired: { kept: 'yes' } } }, '*');
  });
  after(() => t.dispose());

  test('random bytes after the TLS handshake, and before it', async () => {
    const random = prng(SEED);
    const sockets: Socket[] = [];
    for (let i = 0; i < 40; i++) {
      const socket = i % 4 === 3 ? netConnect(t.hub.port, '127.0.0.1') : await tls(t);
      socket.on('error', () => undefined);
      socket.write(randomBytes(random, 1 + Math.floor(random() * 4096)));
      sockets.push(socket);
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const s of sockets) s.destroy();
  });

  test('an MQTT frame that claims 200 MB closes that connection at once, before and after CONNECT', async () => {
    // Before CONNECT, on a hub with IoT Hub's 10 s connect timeout: what closes the connection sooner is the frame guard.
    const defaults = await startTestHub();
    try {
      const claim = Buffer.concat([Buffer.from([0x10]), varint(200 * 1024 * 1024), Buffer.from('MQTT')]);
      const before = await tls(defaults);
      before.write(claim);
      assert.ok((await closedWithin(before)) < 8000, 'closed by the frame guard, not by the connect timeout');
    } finally {
      await defaults.dispose();
    }

    // An authenticated client's PUBLISH that claims 200 MB: the same.
    const victim = await rawConnect(t.hub, { deviceId: 'fuzz-keeper' }, deviceToken({ deviceId: 'fuzz-keeper' }, key));
    assert.ok(typeof victim !== 'number');
    const stream = (victim as any).stream as Socket;
    const closing = closedWithin(stream);
    stream.write(Buffer.concat([Buffer.from([0x30]), varint(200 * 1024 * 1024), Buffer.from([0, 1, 0x61])]));
    assert.ok((await closing) < 8000);
    victim.end(true);
  });

  test('truncated frames and CONNECTs full of garbage are closed', async () => {
    const random = prng(SEED + 1);
    const waits: Array<Promise<number>> = [];
    for (let i = 0; i < 20; i++) {
      const socket = await tls(t);
      const body = randomBytes(random, 2 + Math.floor(random() * 200));
      // Half claim more than they send (truncated); half are complete CONNECTs with a garbage body.
      const claimed = i % 2 ? body.length + 50 : body.length;
      socket.write(Buffer.concat([Buffer.from([0x10]), varint(claimed), body]));
      waits.push(closedWithin(socket));
    }
    await Promise.all(waits);
  });

  test('invalid JSON, a 2 MB body and 100 KB of headers are refused with an answer', async () => {
    const random = prng(SEED + 2);
    for (let i = 0; i < 20; i++) {
      const garbage = randomBytes(random, 1 + Math.floor(random() * 300))
        .toString('latin1')
        .replace(/^[\s\S]/, '{');
      const r = await https(t, { method: 'PUT', path: `/devices/fuzz-json-${i}?api-version=2021-04-12`, body: garbage });
      assert.equal(r.status, 400, r.body);
      assert.equal(JSON.parse(r.body).errorCode, 400004);
    }
    const big = await https(t, {
      method: 'PUT',
      path: '/devices/fuzz-big?api-version=2021-04-12',
      body: `{"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`,
    }).catch((err: Error) => err);
    // The hub answers 413 and closes; a client still writing may see the reset first.
    if (!(big instanceof Error)) assert.equal(big.status, 413);
    const headers = await https(t, {
      path: '/devices/fuzz-keeper?api-version=2021-04-12',
      headers: { 'X-Padding': 'x'.repeat(100 * 1024) },
    }).catch((err: Error) => err);
    if (!(headers instanceof Error)) assert.equal(headers.status, 431);
  });

  test('slow clients (one byte per 100 ms: HTTP headers, an MQTT CONNECT) and a silent one are cut off', async () => {
    const http = await tls(t);
    const mqtt = await tls(t);
    const httpText = Buffer.from(`GET /devices HTTP/1.1\r\nHost: localhost\r\n${'X-Slow: '.padEnd(4000, 'a')}`);
    const mqttConnect = Buffer.concat([Buffer.from([0x10]), varint(3000), Buffer.alloc(3000, 1)]);
    let i = 0;
    const drip = setInterval(() => {
      if (!http.destroyed) http.write(httpText.subarray(i, i + 1));
      if (!mqtt.destroyed) mqtt.write(mqttConnect.subarray(i, i + 1));
      i++;
    }, 100);
    const silent = await tls(t); // handshake done, then nothing
    try {
      await Promise.all([closedWithin(http), closedWithin(mqtt), closedWithin(silent)]);
    } finally {
      clearInterval(drip);
    }
  });

  test('afterwards the hub serves the SDKs as before and lost nothing', async () => {
    const registry = createRegistry(t.connection);
    assert.equal((await registry.getTwin('fuzz-keeper')).responseBody.properties.desired.kept, 'yes');
    assert.equal((await registry.create({ deviceId: 'fuzz-after' })).responseBody.deviceId, 'fuzz-after');
    const client = await createDeviceClient(identityConnectionWithKey(t.connection, { deviceId: 'fuzz-keeper' }, key));
    try {
      await client.open();
      const twin = await client.getTwin();
      assert.equal(twin.properties.desired.kept, 'yes');
    } finally {
      await client.close();
    }
  });
});
