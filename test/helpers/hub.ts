import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { request, type Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHub, type HubOptions } from '../../src/hub/server.js';
import { parseConnection, type ServiceConnection } from '../../src/clients/connection-string.js';

export interface TestHub {
  hub: LocalHub;
  dataDir: string;
  /** The iothubowner connection with the hub's CA and port. */
  connection: ServiceConnection;
  connectionFor(policy: string): ServiceConnection;
  stop(): Promise<void>;
  /** Stops and removes the data dir. */
  dispose(): Promise<void>;
}

/**
 * Free ports below the kernel's ephemeral range, for a hub that restarts on its ports: a port in that
 * range, left free between a stop and a start, can be taken by any connection opened meanwhile (the
 * other tests open hundreds), and the restart then fails with EADDRINUSE.
 */
export async function portsBelowEphemeral(count: number): Promise<number[]> {
  let low = 32768; // Linux's default start of the range
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: its default
  }
  const held = new Map<number, Server>();
  while (held.size < count) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    const server = createServer();
    if (await new Promise<boolean>((resolve) => server.once('error', () => resolve(false)).listen(port, () => resolve(true))))
      held.set(port, server);
  }
  await Promise.all([...held.values()].map((server) => new Promise((resolve) => server.close(resolve))));
  return [...held.keys()];
}

export function tempDir(prefix = 'iothub-tut-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A scratch directory on the disk, where tempDir's may be in RAM under npm test (scratch-on-tmpfs.ts). */
export function diskDir(prefix = 'iothub-tut-test-'): string {
  return mkdtempSync(join(process.env.IOTHUB_TUT_TEST_DISK_TMPDIR ?? tmpdir(), prefix));
}

/**
 * A hub on an ephemeral port with its own data dir (or a given one, to test restarts). With
 * IOTHUB_TUT_TEST_STORE=memory, a hub given no data dir keeps its store in memory instead, as
 * `hub start --in-memory` does (test/in-memory-store.test.ts runs the hub suites so).
 */
export async function startTestHub(options: HubOptions = {}): Promise<TestHub> {
  const dataDir = options.dataDir ?? tempDir();
  const inMemory = options.inMemory ?? (options.dataDir === undefined && process.env.IOTHUB_TUT_TEST_STORE === 'memory');
  const hub = await LocalHub.start({ port: 0, eventHubPort: 0, ...options, dataDir, inMemory });
  const connectionFor = (policy: string): ServiceConnection =>
    parseConnection('service', hub.serviceConnectionString(policy), { ca: hub.tls.ca, port: hub.port });
  let stopped = false;
  const stop = async () => {
    if (!stopped) await hub.stop();
    stopped = true;
  };
  return {
    hub,
    dataDir,
    connection: connectionFor('iothubowner'),
    connectionFor,
    stop,
    dispose: async () => {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The options of a test that restarts a hub on a data dir it names: test/in-memory-store.test.ts, which
 * runs the hub suites again on the in-memory store, skips it (it would run there unchanged, on disk).
 */
export function onDisk(): { skip: string | false } {
  return { skip: process.env.IOTHUB_TUT_TEST_STORE === 'memory' && 'restarts a hub on a data dir: run by its own file' };
}

/**
 * A REST call without the SDK (whose retries and error classes hide the status), with the hub's CA.
 * `options.headers` add to or replace the defaults (Content-Type: application/json, the authorization);
 * an undefined value leaves that header out.
 */
export function restCall(
  t: TestHub,
  method: string,
  path: string,
  authorization?: string,
  body?: string | Buffer,
  options: { agent?: Agent; headers?: Record<string, string | undefined> } = {},
): Promise<{ status: number; body: any; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const all = { 'Content-Type': 'application/json', ...(authorization ? { Authorization: authorization } : {}), ...options.headers };
    const headers = Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined));
    const req = request(
      { host: '127.0.0.1', port: t.hub.port, method, path, ca: t.hub.tls.ca, servername: 'localhost', headers, agent: options.agent },
      (res) => {
        let text = '';
        res
          .on('data', (c) => (text += c))
          .on('end', () => {
            // JSON (IoT Hub's bodies), but a cloud-to-device message's body is the message's own bytes.
            const json = (res.headers['content-type'] ?? 'application/json').startsWith('application/json');
            resolve({ status: res.statusCode!, body: text && json ? JSON.parse(text) : text || undefined, headers: res.headers });
          });
      },
    );
    req.on('error', reject).end(body);
  });
}
