import { chmodSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { environment } from './environment.js';
import { ExitCode, ToolkitError } from './errors.js';

/** What a running local hub tells the toolkit: where it is, what to trust, how to talk to it. */
export interface LocalHubProfile {
  hostName: string;
  /** Its (first) TLS port. */
  port: number;
  /** It listens on IoT Hub's own ports (hub start --standard-ports): clients dial them as they would Azure's. */
  standardPorts?: boolean;
  eventHubPort: number;
  caFile: string;
  pid: number;
  /** When the process started, where the system says (see processStartTime): with the pid, it names one process. */
  processStart?: string;
  /** Absolute; null for a hub in memory. */
  dataDir: string | null;
  /** ISO 8601. */
  startedAt: string;
  logFile?: string;
  /** The IoT Hub tier whose throttles it applies (hub start --throttle). */
  throttle?: string;
  /** Its Event Hub-compatible endpoint's consumer groups beside $Default (hub start --consumer-group). */
  consumerGroups?: string[];
  /** File upload (hub start --file-upload): the container blobs go to, and the certificate written for the storage emulator. */
  fileUpload?: { containerUrl: string; storageCertFile?: string; storageKeyFile?: string };
  /** `hub start --routing`: the settings file, its routes, whether the fallback route is on. */
  routing?: { file: string; routes: number; fallback: boolean };
  serviceConnectionString: string;
  eventHubConnectionString?: string;
  /** The dashboard's one-time login link printed at start (spent once a browser used it). */
  dashboardUrl?: string;
}

/** The per-user home of iothub-tut: the hub's default data dir and the running hubs' profiles live here. */
export function toolkitHome(): string {
  return environment().IOTHUB_TUT_HOME || join(homedir(), '.iothub-tut');
}

/**
 * One profile per running hub, named by its pid: hubs on different data dirs never overwrite or
 * delete each other's, and a hub writes and removes only its own.
 */
function hubsDir(): string {
  return join(toolkitHome(), 'hubs');
}

function profilePath(pid: number): string {
  return join(hubsDir(), `${pid}.json`);
}

/** Where a hub in memory keeps its CA certificate for clients; it goes with the profile. */
function inMemoryCaPath(pid: number): string {
  return join(hubsDir(), `${pid}-ca.pem`);
}

/** Owner-only (profiles hold keys), also when an earlier run left it looser. */
function ensureHubsDir(): void {
  mkdirSync(hubsDir(), { recursive: true, mode: 0o700 });
  chmodSync(hubsDir(), 0o700);
}

/** Written by `hub start`, whole and then renamed, so that no reader sees half of it. */
export function writeProfile(profile: LocalHubProfile): void {
  ensureHubsDir();
  const path = profilePath(profile.pid);
  rmSync(`${path}.tmp`, { force: true }); // a left-over keeps its mode: writeFileSync's applies only when it creates the file
  writeFileSync(`${path}.tmp`, JSON.stringify(profile, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/** Writes the CA certificate of a hub in memory (this process) and returns its path. */
export function writeInMemoryCa(pem: string): string {
  ensureHubsDir();
  const path = inMemoryCaPath(process.pid);
  writeFileSync(path, pem, { mode: 0o644 });
  return path;
}

/** Removes a hub's profile and, for a hub in memory, its CA certificate. */
export function removeProfile(pid: number): void {
  rmSync(profilePath(pid), { force: true });
  rmSync(inMemoryCaPath(pid), { force: true });
}

/** The profiles of the hubs running from this toolkit home, oldest first; those of hubs that are gone are removed. */
export function runningHubs(): LocalHubProfile[] {
  let names: string[];
  try {
    names = readdirSync(hubsDir());
  } catch {
    return [];
  }
  const hubs: LocalHubProfile[] = [];
  for (const name of names) {
    const pid = /^(\d+)\.json$/.exec(name)?.[1];
    if (!pid) continue;
    const profile = readProfile(join(hubsDir(), name));
    if (profile && isRunning(profile)) hubs.push(profile);
    else removeProfile(Number(pid)); // its hub was killed before it could remove it (or it is not a profile)
  }
  return hubs.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

function readProfile(path: string): LocalHubProfile | undefined {
  try {
    const profile = JSON.parse(readFileSync(path, 'utf8')) as LocalHubProfile;
    const valid =
      typeof profile.pid === 'number' &&
      typeof profile.port === 'number' &&
      typeof profile.hostName === 'string' &&
      typeof profile.caFile === 'string' &&
      typeof profile.serviceConnectionString === 'string' &&
      typeof profile.startedAt === 'string';
    return valid ? profile : undefined;
  } catch {
    return undefined;
  }
}

let chosen: string | undefined;

/** The global `--hub <data dir|pid>`: which running hub the commands use. */
export function chooseHub(choice: string): string {
  chosen = choice;
  return choice;
}

/**
 * The hub the commands use: the one chosen with --hub, else the only one running from this toolkit
 * home (IOTHUB_TUT_HOME), else none. Several running and none chosen is an error that lists them.
 */
export function selectedHub(): LocalHubProfile | undefined {
  const hubs = runningHubs();
  if (chosen !== undefined) {
    const choice = chosen;
    const hub = hubs.find((h) => (h.dataDir !== null && sameDir(h.dataDir, choice)) || String(h.pid) === choice);
    if (hub) return hub;
    throw new ToolkitError(
      `No local hub is running on ${choice}` +
        (hubs.length ? `; running: ${describeHubs(hubs)}.` : `: start one with 'iothub-tut hub start --data-dir ${choice}'.`),
      ExitCode.unavailable,
    );
  }
  if (hubs.length > 1) {
    throw new ToolkitError(
      `${hubs.length} local hubs are running: ${describeHubs(hubs)}. Pass --hub <data dir> (or the pid of one in memory) to pick one.`,
      ExitCode.usage,
    );
  }
  return hubs[0];
}

/**
 * True while the hub's process runs: not a zombie (a process that has ended but that its parent has
 * not reaped yet; in a container whose first process never reaps, it stays one), and not another
 * process that got the pid since.
 */
export function isRunning(profile: LocalHubProfile): boolean {
  const stat = procStat(profile.pid);
  if (stat) return !'ZX'.includes(stat.state) && (profile.processStart === undefined || stat.startTime === profile.processStart);
  try {
    process.kill(profile.pid, 0); // no /proc here
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** When a process started (with its pid, that names one process: a pid reused later has another start time). */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/**
 * A process's state and start time (in clock ticks since boot), fields 3 and 22 of Linux's
 * /proc/<pid>/stat, read after the command name (which may hold spaces); undefined where there is no
 * /proc or no such process.
 */
function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], startTime: fields[19] };
  } catch {
    return undefined;
  }
}

function describeHubs(hubs: LocalHubProfile[]): string {
  return hubs.map((h) => `${h.dataDir ?? '(in memory)'} on port ${h.port}, pid ${h.pid}`).join('; ');
}

function sameDir(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
