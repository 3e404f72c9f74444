import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { BIN, type HubUnderTest } from '../lib/hub.js';
import { median } from '../lib/stats.js';
import type { Row } from '../lib/report.js';

const PROBE = fileURLToPath(new URL('../lib/cpu-probe.js', import.meta.url));
const DEVICE = 'bench-startup';
/** Another device: IoT Hub keeps one connection per device, and the device commands connect as DEVICE. */
const ANSWERING = 'bench-startup-methods';

/** Runs the CLI once (bounded) with the CPU probe; its CPU-seconds and CommonJS module count. */
async function measure(args: string[], env: NodeJS.ProcessEnv): Promise<{ cpuS: number; modules: number }> {
  const child = spawn(process.execPath, ['--import', PROBE, BIN, ...args], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = await once(child, 'close');
  clearTimeout(timer);
  const probe = /CLI-CPU (.*)/.exec(stderr)?.[1];
  if (code !== 0 || !probe) throw new Error(`iothub-tut ${args.join(' ')} exited ${code}: ${stderr}`);
  return JSON.parse(probe);
}

/** A device that answers `ping` until stopped, so that invoke-method measures a whole call. */
function answeringDevice(env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [BIN, 'answer-methods', '-d', ANSWERING, '--method', 'ping', '--timeout', '600'], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: 'ignore',
  });
}

/**
 * The CPU-seconds of one CLI process per command, against the hub, median of `runs`: most of a
 * command's cost is Node's start and the modules it loads (CONTRIBUTING.md, "Where the time goes").
 */
export async function cliStartupSuite(hub: HubUnderTest, options: { runs: number }): Promise<Row[]> {
  const env = { IOTHUB_TUT_HOME: hub.home };
  const commands: Array<{ name: string; args: (i: number) => string[] }> = [
    { name: '--help', args: () => ['--help'] },
    { name: 'create-device', args: (i) => ['create-device', '-d', `${DEVICE}-${i}`] },
    { name: 'twin show', args: () => ['twin', 'show', '-d', DEVICE] },
    { name: 'query', args: () => ['query', 'SELECT * FROM devices'] },
    { name: 'send-telemetry --count 1', args: () => ['send-telemetry', '-d', DEVICE, '--count', '1', '--interval', '0'] },
    { name: 'update-reported', args: (i) => ['update-reported', '-d', DEVICE, '--device', '--reported', JSON.stringify({ run: i })] },
    { name: 'invoke-method', args: () => ['invoke-method', 'ping', '-d', ANSWERING, '--connect-timeout', '30'] },
    { name: 'send-c2d', args: () => ['send-c2d', '-d', DEVICE, '--ack', 'none'] },
    { name: 'monitor-events --count 1', args: () => ['monitor-events', '--from-start', '--count', '1', '--timeout', '30'] },
  ];
  for (const id of [DEVICE, ANSWERING]) await measure(['create-device', '-d', id], env);
  const device = answeringDevice(env);
  const rows: Row[] = [];
  try {
    for (const command of commands) {
      const runs = [];
      for (let i = 0; i < options.runs; i++) runs.push(await measure(command.args(i), env));
      rows.push({
        group: 'cli-startup',
        name: `\`iothub-tut ${command.name}\``,
        value: median(runs.map((r) => r.cpuS)),
        unit: 'CPU-s',
        note: `median of ${options.runs}; ${Math.round(median(runs.map((r) => r.modules)))} CommonJS modules`,
      });
    }
  } finally {
    device.kill('SIGINT');
    const timer = setTimeout(() => device.kill('SIGKILL'), 15_000);
    if (device.exitCode === null) await once(device, 'close');
    clearTimeout(timer);
  }
  return rows;
}
