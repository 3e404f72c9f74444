// Run by the hub-start suite as a fresh process: imports the hub, starts it (in memory, or on a new
// data dir on disk), stops it, and prints what each step cost as one JSON line. CPU counts every
// thread of the process (the event writer's too); the process's total includes Node's own start.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cpuSeconds = (since?: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
};
const step = async <T>(work: () => Promise<T>): Promise<[T, { cpu: number; ms: number }]> => {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = await work();
  return [result, { cpu: cpuSeconds(cpu), ms: performance.now() - start }];
};

const disk = process.argv[2] === 'disk';
const dataDir = disk ? mkdtempSync(join(tmpdir(), 'iothub-tut-bench-start-')) : undefined;
try {
  const [{ LocalHub }, importing] = await step(() => import('../../src/hub/server.js'));
  const [hub, starting] = await step(() => LocalHub.start({ inMemory: !disk, dataDir, port: 0, eventHubPort: 0 }));
  const [, stopping] = await step(() => hub.stop());
  process.stdout.write(JSON.stringify({ import: importing, start: starting, stop: stopping, process: cpuSeconds() }) + '\n');
} finally {
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
