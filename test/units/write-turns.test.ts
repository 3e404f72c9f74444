import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { WriteTurns } from '../../src/hub/store/write-turns.js';

// The event writer thread and the hub's connection take turns at the write lock: here the thread's
// side runs in a worker that counts its commits in shared memory and holds each one for a while.
const writerThread = `
  const { parentPort, workerData } = require('node:worker_threads');
  import(workerData.module).then(({ WriteTurns }) => {
    const turns = new WriteTurns(workerData.flags);
    parentPort.on('message', () => {
      turns.writerEnter();
      Atomics.add(workerData.commits, 0, 1);
      Atomics.wait(workerData.commits, 1, 0, 200); // the commit
      turns.writerLeave();
    });
    parentPort.postMessage('ready');
  });
`;

/** Spins (bounded) until `condition` holds; this thread must not yield, or it would not be holding its turn. */
function spinUntil(condition: () => boolean, what: string, ms = 10_000): void {
  const deadline = Date.now() + ms;
  while (!condition()) if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
}

test('the hub connection and the writer thread never write at once, and the writer goes first', async () => {
  const turns = new WriteTurns();
  const commits = new Int32Array(new SharedArrayBuffer(8));
  const module = new URL('../../src/hub/store/write-turns.js', import.meta.url).href;
  const worker = new Worker(writerThread, { eval: true, workerData: { module, flags: turns.flags, commits } });
  try {
    await new Promise((resolve) => worker.once('message', resolve));
    worker.postMessage('commit');
    spinUntil(() => Atomics.load(commits, 0) === 1, 'the writer is committing');
    turns.hubEnter(); // waits for the commit in progress
    assert.equal(Atomics.load(turns.flags, 0), 0, 'the hub entered only once the writer had left');

    // The other way: a commit waits for the hub's transaction in progress, then goes first.
    worker.postMessage('commit');
    spinUntil(() => Atomics.load(turns.flags, 0) === 1, 'the writer claims the next turn');
    const until = Date.now() + 100;
    spinUntil(() => Date.now() > until, 'a while');
    assert.equal(Atomics.load(commits, 0), 1, 'the writer did not commit while the hub wrote');
    turns.hubLeave();
    spinUntil(() => Atomics.load(commits, 0) === 2, 'the writer commits once the hub has left');
  } finally {
    await worker.terminate();
  }
});
