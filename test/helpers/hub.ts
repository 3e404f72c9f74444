import { mkdtempSync, rmSync } from 'node:fs';
import { request, type Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHub, type HubOptions } from '../../src/hub/server.js';
import type { HubConnection } from '../../src/clients/service-clients.js';

export interface TestHub {
  hub: LocalHub;
  dataDir: string;
  /** The iothubowner connection with the hub's CA and port. */
  connection: HubConnection;
  connectionFor(policy: string): HubConnection;
  stop(): Promise<void>;
  /** Stops and removes the data dir. */
  dispose(): Promise<void>;
}

export function tempDir(prefix = 'iothub-tut-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A hub on an ephemeral port with its own data dir (or a given one, to test restarts). */
export async function startTestHub(options: HubOptions = {}): Promise<TestHub> {
  const dataDir = options.dataDir ?? tempDir();
  const hub = await LocalHub.start({ port: 0, eventHubPort: 0, ...options, dataDir });
  const connectionFor = (policy: string): HubConnection => ({
    connectionString: hub.serviceConnectionString(policy),
    transport: { ca: hub.tls.ca, port: hub.port },
  });
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

/** A REST call without the SDK (whose retries and error classes hide the status), with the hub's CA. */
export function restCall(
  t: TestHub, method: string, path: string, authorization?: string, body?: string,
  options: { agent?: Agent; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const headers = { 'Content-Type': 'application/json', ...(authorization ? { Authorization: authorization } : {}), ...options.headers };
    const req = request({ host: '127.0.0.1', port: t.hub.port, method, path, ca: t.hub.tls.ca, servername: 'localhost', headers, agent: options.agent }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject).end(body);
  });
}
