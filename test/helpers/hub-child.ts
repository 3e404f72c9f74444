// A hub in a process of its own (run by test/cli/hub-start.test.ts), so that what importing and starting
// it loads is its own: the test runner's process has the SDKs, and with them rhea and ws, loaded.
// Prints one JSON line (ports, CA, connection strings, the packages loaded); then answers each
// `loaded` line on stdin with the packages loaded by then; stops when stdin ends.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { LocalHub } from '../../src/hub/server.js';

const packages = () => [
  ...new Set(Object.keys(createRequire(import.meta.url).cache).map((path) => /[/\\]node_modules[/\\]([^/\\]+)[/\\]/.exec(path)?.[1] ?? '')),
];

const hub = await LocalHub.start({ inMemory: true, port: 0, eventHubPort: 0 });
const say = (value: unknown) => process.stdout.write(JSON.stringify(value) + '\n');
say({
  port: hub.port,
  ca: hub.tls.ca,
  service: hub.serviceConnectionString(),
  eventHub: hub.eventHubConnectionString(),
  loaded: packages(),
});
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => line === 'loaded' && say(packages()));
lines.on('close', () => void hub.stop());
