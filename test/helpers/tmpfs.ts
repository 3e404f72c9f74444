import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './hub.js';

/** A small file system of its own, to fill: a tmpfs mounted on a fresh directory. */
export interface SmallDisk {
  dir: string;
  /** Writes a file until the file system has no byte left. */
  fill(): void;
  /** Removes what fill() wrote. */
  free(): void;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `megabytes` (root, and a kernel that lets this process mount); returns the
 * reason as a string when it cannot, for the test to skip with.
 */
export function mountSmallDisk(megabytes: number): SmallDisk | string {
  const dir = tempDir('iothub-tut-disk-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const reason = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message)
      .trim()
      .split('\n')[0];
    return `cannot mount a tmpfs to fill (${reason || 'mount failed'})`;
  }
  const filler = join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      try {
        for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 9, 1]) {
          const chunk = Buffer.alloc(size, 1);
          try {
            for (;;) writeSync(fd, chunk);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
