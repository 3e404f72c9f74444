import { readdirSync } from 'node:fs';
import { describe } from 'node:test';

/**
 * Runs test files in this one process, `concurrency` files at a time; each file's own tests run in
 * order, as in a process of its own. A process that loads the hub and the SDKs costs about a
 * CPU-second before its first test, and `npm test` is bound by CPU, so the files that can share a
 * process do (CONTRIBUTING.md, "Where the time goes"). Files that measure their process (its memory,
 * what it has loaded, its timers) stay at test/'s root, a process each.
 */
export function runTogether(
  folder: URL,
  concurrency: number,
  { files = testFilesIn(folder), name = folder.pathname.replace(/^.*\/(test\/)/, '$1') } = {},
): void {
  describe(name, { concurrency }, () => {
    for (const file of files)
      describe(file, { concurrency: 1 }, async () => {
        await import(new URL(file, folder).href);
      });
  });
}

function testFilesIn(folder: URL): string[] {
  return readdirSync(folder)
    .filter((name) => name.endsWith('.test.js'))
    .sort();
}
