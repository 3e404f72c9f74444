import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { HubLog } from './log.js';

// How many file descriptors (sockets, the database, the log) the hub may hold: RLIMIT_NOFILE.
// Node has no getrlimit or setrlimit; on POSIX it raises the soft limit to the hard one itself as
// it starts (node.cc, PlatformInit), so the hub usually finds them equal. When they are not (a
// runtime that embeds Node without that step), `prlimit` from util-linux raises the hub's own soft
// limit; without it the limit stays as it is, and the hub says so.

export interface DescriptorLimits {
  soft: number;
  /** Infinity when unlimited. */
  hard: number;
}

/** The process's descriptor limits, or undefined where they cannot be read (Windows has none of this kind). */
export function readDescriptorLimits(): DescriptorLimits | undefined {
  if (process.platform === 'win32') return undefined;
  try {
    // Linux: "Max open files            1024                 4096                 files"
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const [soft, hard] =
      line
        ?.trim()
        .split(/\s{2,}/)
        .slice(1, 3) ?? [];
    if (soft && hard) return { soft: limitValue(soft), hard: limitValue(hard) };
  } catch {
    // no /proc (macOS, BSD): a shell started from here inherits the limits and prints them
  }
  try {
    const [soft, hard] = execFileSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .trim()
      .split('\n');
    if (soft && hard) return { soft: limitValue(soft), hard: limitValue(hard) };
  } catch {
    // no shell: nothing more to learn
  }
  return undefined;
}

function limitValue(text: string): number {
  return text.trim() === 'unlimited' ? Infinity : Number(text);
}

/**
 * Raises the soft descriptor limit to the hard one where it is lower and `prlimit` is at hand, and
 * returns the soft limit in effect (undefined where there is none to read).
 */
export function raiseDescriptorLimit(log: HubLog): number | undefined {
  const limits = readDescriptorLimits();
  if (!limits || limits.soft >= limits.hard) return limits?.soft;
  const hard = limits.hard === Infinity ? 'unlimited' : String(limits.hard);
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], { stdio: 'ignore' });
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'prlimit (util-linux) is not installed' : 'prlimit refused';
    log.info(
      'hub',
      `the descriptor limit stays at ${limits.soft} (the hard limit is ${hard}): ${why}; run \`ulimit -n ${hard}\` before starting the hub to raise it`,
    );
    return limits.soft;
  }
  const raised = readDescriptorLimits()?.soft ?? limits.soft;
  log.info('hub', `raised the descriptor limit from ${limits.soft} to ${raised}`);
  return raised;
}
