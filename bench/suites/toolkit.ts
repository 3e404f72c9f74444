import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { BIN, rssOf, type HubUnderTest } from '../lib/hub.js';
import { median, nowMs, sleep } from '../lib/stats.js';
import type { Row } from '../lib/report.js';

const PROBE = fileURLToPath(new URL('../lib/sdk-probe.js', import.meta.url));

interface CliRun {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node [nodeArgs] <bin> args` (bin: the CLI unless given) and times it from spawn to exit. */
async function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
  bin: string[] = [BIN],
  timeoutMs = 60_000,
): Promise<CliRun> {
  const start = nowMs();
  const child = spawn(process.execPath, [...nodeArgs, ...bin, ...args], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = await once(child, 'close');
  clearTimeout(timer);
  return { ms: nowMs() - start, code, stdout, stderr };
}

async function medianMs(runs: number, args: (i: number) => string[], env: NodeJS.ProcessEnv, bin = [BIN]): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const run = await cli(args(i), env, [], bin);
    if (run.code !== 0) throw new Error(`iothub-tut ${args(i).join(' ')} exited ${run.code}: ${run.stderr}`);
    times.push(run.ms);
  }
  return median(times);
}

async function sdkPackages(args: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const run = await cli(args, env, ['--import', PROBE]);
  return JSON.parse(/SDK-PACKAGES (.*)/.exec(run.stderr)?.[1] ?? '[]');
}

/** Start-up of the CLI (--help, create-device), what it loads, and send-telemetry's memory per device. */
export async function toolkitSuite(hub: HubUnderTest, options: { runs: number; telemetryDevices: number }): Promise<Row[]> {
  const env = { IOTHUB_TUT_HOME: hub.home };
  const group = 'toolkit';
  const nodeAlone = await medianMs(options.runs, () => ['-e', '0'], env, []);
  const help = await medianMs(options.runs, () => ['--help'], env);
  const create = await medianMs(options.runs, (i) => ['create-device', '--device-id', `bench-cli-${i}`], env);
  const helpLoads = await sdkPackages(['--help'], env);
  const createLoads = await sdkPackages(['create-device', '--device-id', 'bench-cli-probe'], env);
  const rows: Row[] = [
    { group, name: '`node -e 0` (for scale)', value: nodeAlone, unit: 'ms', note: `median of ${options.runs}` },
    {
      group,
      name: '`iothub-tut --help`',
      value: help,
      unit: 'ms',
      target: { op: '<=', value: 150 },
      note: `median of ${options.runs}; ${(help / nodeAlone).toFixed(2)}× node's own start-up`,
    },
    ...(await withoutExtraCaCerts(options.runs, env)),
    {
      group,
      name: 'SDK packages loaded by --help',
      value: helpLoads.length,
      unit: 'pkgs',
      target: { op: '<=', value: 0 },
      note: helpLoads.join(' ') || 'none',
    },
    { group, name: '`iothub-tut create-device`', value: create, unit: 'ms', note: `median of ${options.runs}, against the hub` },
    {
      group,
      name: 'device SDK loaded by create-device',
      value: createLoads.filter((p) => p.startsWith('azure-iot-device')).length,
      unit: 'pkgs',
      target: { op: '<=', value: 0 },
      note: createLoads.join(' '),
    },
  ];
  rows.push(await sendTelemetryMemory(hub, env, options.telemetryDevices));
  return rows;
}

/**
 * Node reads and parses NODE_EXTRA_CA_CERTS at every start, before any of our code runs; where it is
 * set (this workplace sets it to the system's whole CA bundle), the same two figures without it.
 */
async function withoutExtraCaCerts(runs: number, env: NodeJS.ProcessEnv): Promise<Row[]> {
  if (!process.env.NODE_EXTRA_CA_CERTS) return [];
  const unset = { ...env, NODE_EXTRA_CA_CERTS: '' };
  const nodeAlone = await medianMs(runs, () => ['-e', '0'], unset, []);
  const help = await medianMs(runs, () => ['--help'], unset);
  const note = `median of ${runs}; NODE_EXTRA_CA_CERTS unset (it is ${process.env.NODE_EXTRA_CA_CERTS} here)`;
  return [
    { group: 'toolkit', name: '`node -e 0`, without NODE_EXTRA_CA_CERTS', value: nodeAlone, unit: 'ms', note },
    {
      group: 'toolkit',
      name: '`iothub-tut --help`, without NODE_EXTRA_CA_CERTS',
      value: help,
      unit: 'ms',
      note: `${note}; ${(help - nodeAlone).toFixed(0)} ms more than node's own start-up`,
    },
  ];
}

/**
 * Peak RSS of `send-telemetry --devices K --count 3 --interval 1` (it registers simDevice-1..K, then
 * opens K SDK clients one after another), sampled until it exits; bounded in time.
 */
async function sendTelemetryMemory(hub: HubUnderTest, env: NodeJS.ProcessEnv, devices: number): Promise<Row> {
  const row: Row = {
    group: 'toolkit',
    name: `send-telemetry --devices ${devices}: peak RSS`,
    value: null,
    unit: 'MiB',
    target: { op: '<=', value: 1024 },
  };
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, 'send-telemetry', '--devices', String(devices), '--count', '3', '--interval', '1'], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: 'ignore',
  });
  let peak = 0;
  const deadline = started + 180_000;
  while (Date.now() < deadline && child.exitCode === null) {
    peak = Math.max(peak, rssOf(child.pid!) ?? 0);
    await sleep(100);
  }
  const exited = child.exitCode;
  if (exited === null) {
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await once(child, 'close');
    clearTimeout(timer);
  }
  const mib = peak / 2 ** 20;
  const how =
    exited === null
      ? 'stopped at the 180 s bound'
      : exited === 0
        ? `exit 0 after ${((Date.now() - started) / 1000).toFixed(0)} s`
        : `exited ${exited}`;
  return { ...row, value: mib, note: `${(peak / devices / 1024).toFixed(0)} KiB per device; ${devices * 3} messages; ${how}` };
}
