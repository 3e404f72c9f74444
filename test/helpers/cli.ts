import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommandLine } from '../../src/cli/main.js';
import { parseConnection } from '../../src/clients/connection-string.js';
import { withEnvironment } from '../../src/clients/environment.js';
import { runningHubs, writeInMemoryCa, writeProfile } from '../../src/clients/local-hub-profile.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import type { TestHub } from './hub.js';

export const BIN = fileURLToPath(new URL('../../../bin/iothub-tut', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a user would, in a scratch IOTHUB_TUT_HOME unless env says otherwise. */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
  cwd?: string,
): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = await once(child, 'close');
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * Runs the CLI in this process (runCommandLine), with its own output and environment, as runCli
 * would in a subprocess: for command lines the CLI answers before it reaches a hub (help, usage
 * errors), which load no SDK, so the test process keeps none of its timers. Runs may overlap.
 */
export async function runCliInProcess(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCommandLine(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: cliEnv(env),
  });
  return { code, stdout, stderr };
}

export function cliEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...env };
  for (const name of ['IOTHUB_CONNECTION_STRING', 'IOTHUB_DEVICE_CONNECTION_STRING', 'EVENTHUB_CONNECTION_STRING']) {
    if (!(name in env)) delete merged[name];
  }
  return merged;
}

/** A long-running CLI process (hub start, receive-twin-patch...) whose --json lines can be awaited. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly lines: unknown[] = [];
  stderr = '';
  private waiters: Array<() => void> = [];

  constructor(args: string[], env: Record<string, string | undefined> = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (c) => (this.stderr += c));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line));
      } catch {
        this.lines.push(line);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits (bounded) for an output line that satisfies `predicate`. */
  async waitFor<T = any>(predicate: (line: any) => boolean, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(predicate);
      if (found !== undefined) return found as T;
      if (this.child.exitCode !== null)
        throw new Error(`process exited (${this.child.exitCode}) before the expected line; stderr: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for a line; got ${JSON.stringify(this.lines)}; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async exit(timeoutMs = 30_000): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const [code] = await once(this.child, 'close');
    clearTimeout(timer);
    return code;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGINT');
    return this.exit();
  }
}

/** The --json lines of a finished command. */
export function jsonLines(stdout: string): any[] {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

/** One step of `demo --json`'s report. */
export interface DemoStep {
  step: string;
  /** The transport its device side used; absent for a service-only step. */
  transport?: string;
  result?: unknown;
}

/** `demo --json` with `args`, in a scratch home: asserts that it passed and returns its report's steps. */
export async function runDemo(args: string[] = []): Promise<DemoStep[]> {
  const home = mkdtempSync(join(tmpdir(), 'iothub-tut-demo-'));
  try {
    const r = await runCli(['demo', ...args, '--json'], { IOTHUB_TUT_HOME: home }, 120_000);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ok: boolean; steps: DemoStep[] };
    assert.equal(report.ok, true);
    return report.steps;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** The result of the demo step named `step`. */
export const demoResult = (steps: DemoStep[], step: string): unknown => steps.find((s) => s.step === step)?.result;

/** Terminal 1 of the tutorials: `hub start` as a subprocess, with its own scratch IOTHUB_TUT_HOME. */
export interface HubProcess {
  hub: CliProcess;
  home: string;
  env: { IOTHUB_TUT_HOME: string };
  /** Ctrl-C, then removes the home; resolves to the hub's exit code. */
  stop(): Promise<number | null>;
}

/** `args`: more of `hub start`'s options. */
export async function startHubProcess(args: string[] = []): Promise<HubProcess> {
  const home = mkdtempSync(join(tmpdir(), 'iothub-tut-cli-'));
  const env = { IOTHUB_TUT_HOME: home };
  const hub = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--json', ...args], env);
  await hub.waitFor((l) => l.event === 'started');
  return {
    hub,
    home,
    env,
    stop: async () => {
      const code = await hub.stop();
      rmSync(home, { recursive: true, force: true });
      return code;
    },
  };
}

/** A home whose profile points the CLI at an in-process hub (startTestHub), as `hub start` points it at its own. */
export function homeFor(t: TestHub): string {
  const home = mkdtempSync(join(tmpdir(), 'iothub-tut-cli-'));
  withEnvironment({ IOTHUB_TUT_HOME: home }, () =>
    writeProfile({
      hostName: 'localhost',
      port: t.hub.port,
      eventHubPort: t.hub.eventHubPort,
      caFile: writeInMemoryCa(t.hub.tls.ca),
      pid: process.pid,
      dataDir: t.dataDir,
      startedAt: new Date().toISOString(),
      serviceConnectionString: t.connection.connectionString,
      eventHubConnectionString: t.hub.eventHubConnectionString(),
    }),
  );
  return home;
}

/**
 * A call to the service REST API of the hub a CLI home points at (its profile: port, CA, iothubowner key),
 * for set-up that is not under test: cheaper than a CLI process, and the test process loads no service SDK.
 * Resolves to the response's JSON body; a status of 300 or more rejects.
 */
export async function serviceCall(
  home: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<any> {
  const [profile] = withEnvironment({ IOTHUB_TUT_HOME: home }, runningHubs);
  if (!profile) throw new Error(`no running hub has a profile in ${home}`);
  const service = parseConnection('service', profile.serviceConnectionString);
  const authorization = createSasToken(service.hostName, service.key, service.keyName, 3600);
  const separator = path.includes('?') ? '&' : '?';
  const req = request({
    host: '127.0.0.1',
    port: profile.port,
    method,
    path: `${path}${separator}api-version=2021-04-12`,
    ca: readFileSync(profile.caFile),
    servername: 'localhost',
    headers: { 'Content-Type': 'application/json', Authorization: authorization, ...headers },
    timeout: 60_000,
  });
  req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 60 s`)));
  req.end(body === undefined ? undefined : JSON.stringify(body));
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let text = '';
  for await (const chunk of res) text += chunk;
  if (res.statusCode! >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** Registers a device, and a module on it when given, through serviceCall; resolves to its connection string. */
export async function createIdentity(home: string, deviceId: string, moduleId?: string): Promise<string> {
  const device = await serviceCall(home, 'PUT', `/devices/${encodeURIComponent(deviceId)}`, { deviceId });
  const identity = moduleId
    ? await serviceCall(home, 'PUT', `/devices/${encodeURIComponent(deviceId)}/modules/${encodeURIComponent(moduleId)}`, {
        deviceId,
        moduleId,
      })
    : device;
  return `HostName=localhost;DeviceId=${deviceId};${moduleId ? `ModuleId=${moduleId};` : ''}SharedAccessKey=${identity.authentication.symmetricKey.primaryKey}`;
}
