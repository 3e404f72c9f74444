// SQLite lets one connection write at a time, and its busy handler favours whoever asks again first:
// a connection that finds the lock taken sleeps at growing intervals (up to 100 ms) before it asks
// again. The hub has two writers, its own connection (twins, registry) and the event writer thread's
// (D2C commits); a device sending twin updates back to back kept the lock taken nearly all the time,
// and D2C commits, so every telemetry PUBACK, waited up to seconds. WriteTurns makes them take turns.

const WRITER = 0;
const HUB = 1;

/** The longest either side waits for the other (busy_timeout's bound); then SQLite's locking decides. */
const MAX_WAIT_MS = 5000;

/**
 * Turns at the write lock between the hub's connection and the event writer thread's, the writer's
 * first: a commit it waits to make goes before the hub's next transaction, and starts as soon as
 * the hub's transaction in progress ends. Shared memory (two flags), so both threads see them at once.
 */
export class WriteTurns {
  constructor(readonly flags = new Int32Array(new SharedArrayBuffer(8))) {}

  /** The writer thread, before its transaction: claims the next turn, waits for the hub's to end. */
  writerEnter(): void {
    Atomics.store(this.flags, WRITER, 1);
    waitWhileSet(this.flags, HUB);
  }

  writerLeave(): void {
    Atomics.store(this.flags, WRITER, 0);
    Atomics.notify(this.flags, WRITER);
  }

  /** The hub's connection, before its transaction: lets a writer that claimed the turn go first. */
  hubEnter(): void {
    for (;;) {
      Atomics.store(this.flags, HUB, 1);
      if (Atomics.load(this.flags, WRITER) === 0) return;
      this.hubLeave();
      if (!waitWhileSet(this.flags, WRITER)) {
        Atomics.store(this.flags, HUB, 1);
        return;
      }
    }
  }

  hubLeave(): void {
    Atomics.store(this.flags, HUB, 0);
    Atomics.notify(this.flags, HUB);
  }
}

/** Waits (blocking this thread, bounded) until flags[at] is 0; false if it timed out. */
function waitWhileSet(flags: Int32Array, at: number): boolean {
  const deadline = Date.now() + MAX_WAIT_MS;
  while (Atomics.load(flags, at) === 1) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    Atomics.wait(flags, at, 1, left);
  }
  return true;
}
