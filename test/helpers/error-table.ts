import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { runCli, runCliInProcess, type CliResult } from './cli.js';
import { CliThread } from './cli-thread.js';

// What the error-table tests (test/cli-errors*.test.ts) share: README's "Errors and exit codes" table
// is checked row by row, across every command each row applies to, with the CLI in this process, in a
// worker thread or as a subprocess (walk), and each row and kind once as a subprocess at least.

export const KEY = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
export const STACK_FRAME = /\bat .+:\d+:\d+/;
/** Makes name resolution fail in the CLI as it does without DNS (test/helpers/no-dns.ts). */
export const NO_DNS = { NODE_OPTIONS: `--import=${fileURLToPath(new URL('./no-dns.js', import.meta.url))}` };

export const serviceString = (key = KEY, policy = 'iothubowner', host = 'localhost') =>
  `HostName=${host};SharedAccessKeyName=${policy};SharedAccessKey=${key}`;
export const deviceString = (deviceId: string, key = KEY, moduleId?: string, host = 'localhost') =>
  `HostName=${host};DeviceId=${deviceId};${moduleId ? `ModuleId=${moduleId};` : ''}SharedAccessKey=${key}`;
export const eventHubString = (endpoint: string, key = KEY) =>
  `Endpoint=${endpoint};SharedAccessKeyName=service;SharedAccessKey=${key};EntityPath=iothub-tut;UseDevelopmentEmulator=true`;

export function oneLineError(r: CliResult, exitCode: number, message: RegExp): void {
  assert.equal(r.code, exitCode, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^error: /);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, STACK_FRAME, 'no stack trace');
  assert.ok(!r.stderr.includes(KEY.slice(0, 20)), 'the key is not echoed');
}

/** Commander's own usage errors add a hint line after the error. */
export function usageError(r: CliResult, message: RegExp): void {
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^error: /);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, STACK_FRAME, 'no stack trace');
}

export type Kind = 'service' | 'device' | 'eventhub';

/**
 * Every command that talks to a hub: `run` is the command with what bounds its wait, `target` the
 * identity it acts on (the tests' 'known' device and its module 'm1') when no connection string names it.
 */
export interface CommandUnderTest {
  name: string;
  kind: Kind;
  run: string[];
  target: string[];
}

export const COMMANDS: CommandUnderTest[] = [
  { name: 'create-device', kind: 'service', run: ['create-device'], target: ['-d', 'fresh'] },
  { name: 'create-module', kind: 'service', run: ['create-module'], target: ['-d', 'fresh', '-m', 'fresh-m'] },
  { name: 'update-module-twin', kind: 'service', run: ['update-module-twin'], target: ['-d', 'known', '-m', 'm1'] },
  { name: 'invoke-reboot', kind: 'service', run: ['invoke-reboot', '--wait', '0'], target: ['-d', 'known'] },
  { name: 'invoke-method', kind: 'service', run: ['invoke-method', 'ping'], target: ['-d', 'known'] },
  { name: 'twin show', kind: 'service', run: ['twin', 'show'], target: ['-d', 'known', '-m', 'm1'] },
  { name: 'query', kind: 'service', run: ['query', 'SELECT * FROM devices'], target: [] },
  { name: 'receive-twin-patch', kind: 'device', run: ['receive-twin-patch', '--timeout', '30'], target: ['-d', 'known', '-m', 'm1'] },
  { name: 'update-reported', kind: 'device', run: ['update-reported'], target: ['-d', 'known', '-m', 'm1'] },
  { name: 'reboot-device', kind: 'device', run: ['reboot-device', '--count', '1'], target: ['-d', 'known'] },
  { name: 'send-telemetry', kind: 'device', run: ['send-telemetry', '--count', '1'], target: ['-d', 'known'] },
  { name: 'monitor-events', kind: 'eventhub', run: ['monitor-events', '--count', '1', '--timeout', '1'], target: [] },
  { name: 'answer-methods', kind: 'device', run: ['answer-methods', '--count', '1', '--timeout', '30'], target: ['-d', 'known'] },
];
export const ofKind = (kind: Kind) => COMMANDS.filter((c) => c.kind === kind);

export interface Case {
  name: string;
  args: string[];
  env?: Record<string, string>;
  check(r: CliResult): void;
  /** Run this case as a subprocess too (one case of each row and kind at least: across marks them). */
  subprocess?: boolean;
}

export interface WalkOptions {
  /**
   * Which cases run in this process (runCliInProcess), all or those the function picks; of those,
   * the ones marked `subprocess` run as a subprocess as well. Of the others, those marked
   * `subprocess` run as a subprocess, the rest in a worker thread (CliThread).
   */
  inProcess?: boolean | ((c: Case) => boolean);
}

const SUBPROCESSES_AT_A_TIME = 4;

/** Runs the cases and reports every one that failed, by command and where it ran. */
export async function walk(env: Record<string, string>, cases: Case[], { inProcess = false }: WalkOptions = {}): Promise<void> {
  const failures: string[] = [];
  const check = (c: Case, r: CliResult, how: string) => {
    try {
      c.check(r);
    } catch (err) {
      failures.push(`${c.name} (${c.args.join(' ')})${how}: ${(err as Error).message}`);
    }
  };
  const here = cases.filter(typeof inProcess === 'function' ? inProcess : () => inProcess);
  // A case run both ways runs apart: twice at once, a device command's two connections would take turns.
  const inThread = cases.filter((c) => !here.includes(c) && !c.subprocess);
  const queue = cases.filter((c) => c.subprocess);
  const thread = inThread.length > 0 ? new CliThread() : undefined;
  try {
    await Promise.all([
      ...here.map(async (c) => check(c, await runCliInProcess(c.args, { ...env, ...c.env }), ', in-process')),
      ...inThread.map(async (c) => check(c, await thread!.run(c.args, { ...env, ...c.env }), ', in a worker thread')),
      ...Array.from({ length: SUBPROCESSES_AT_A_TIME }, async () => {
        for (let c = queue.shift(); c; c = queue.shift())
          check(c, await runCli(c.args, { ...env, ...c.env }, 120_000), ', as a subprocess');
      }),
    ]);
  } finally {
    await thread?.close();
  }
  assert.deepEqual(failures, [], failures.join('\n\n'));
}

/**
 * A case of a service command: in-process-safe where the hub is reachable or refuses at once (the
 * REST client leaves no timer), unlike a device command, whose closed client can leave the SDK's.
 */
export const ofServiceCommand = (c: Case) => COMMANDS.find((command) => command.name === c.name)?.kind === 'service';

/** Marks the first case for a subprocess too (walk): the cases of one row, one message. */
export function oneAsSubprocess(cases: Case[]): Case[] {
  return cases.map((c, i) => (i === 0 ? { ...c, subprocess: true } : c));
}

/** The same expected error for each of these commands. */
export function across(
  commands: CommandUnderTest[],
  args: (c: CommandUnderTest) => string[],
  exitCode: number,
  message: RegExp,
  env?: Record<string, string>,
): Case[] {
  // The first of each kind as a subprocess too: a service, a device and an Event Hub client each end their own way.
  return commands.map((c) => ({
    name: c.name,
    args: args(c),
    env,
    check: (r) => oneLineError(r, exitCode, message),
    subprocess: commands.find((first) => first.kind === c.kind) === c,
  }));
}
