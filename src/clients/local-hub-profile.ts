import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What a running local hub tells the toolkit: where it is, what to trust, how to talk to it. */
export interface LocalHubProfile {
  hostName: string;
  port: number;
  caFile: string;
  pid: number;
  serviceConnectionString: string;
  eventHubConnectionString?: string;
}

/** The per-user home of iothub-tut: the hub's default data dir and the profile live here. */
export function toolkitHome(): string {
  return process.env.IOTHUB_TUT_HOME || join(homedir(), '.iothub-tut');
}

export function profilePath(): string {
  return join(toolkitHome(), 'profile.json');
}

/** Written by `hub start` (owner-only: it holds keys). */
export function writeProfile(profile: LocalHubProfile): void {
  mkdirSync(toolkitHome(), { recursive: true, mode: 0o700 });
  writeFileSync(profilePath(), JSON.stringify(profile, null, 2) + '\n', { mode: 0o600 });
  chmodSync(profilePath(), 0o600); // the mode given to writeFileSync applies only when it creates the file
}

export function removeProfile(pid: number): void {
  const profile = readProfile({ evenIfStopped: true });
  if (profile?.pid === pid) rmSync(profilePath(), { force: true });
}

/** The profile of a hub that is still running, or undefined. */
export function readProfile(options: { evenIfStopped?: boolean } = {}): LocalHubProfile | undefined {
  const path = profilePath();
  if (!existsSync(path)) return undefined;
  try {
    const profile = JSON.parse(readFileSync(path, 'utf8')) as LocalHubProfile;
    return options.evenIfStopped || isRunning(profile.pid) ? profile : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
