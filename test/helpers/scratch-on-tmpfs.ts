import { accessSync, constants, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';

// npm test preloads this into the test runner (node --import), whose test processes, and the hubs and
// CLI processes they start, inherit its environment: their scratch files (hub data dirs, CLI homes)
// go to a RAM file system when the machine has one. A hub's store syncs each commit to its disk
// (PRAGMA synchronous = FULL), which on a real disk costs CPU and holds up the event loop that a test
// process's hubs share; on tmpfs a sync returns at once. What the store must survive, a process
// killed mid-write, the tests still check. A TMPDIR of one's own is left as it is. A test about what
// a sync costs (fairness under a flood of twin writes) takes a disk directory with diskDir (hub.ts).

const RAM = '/dev/shm';
const TMPFS_MAGIC = 0x01021994;

if (process.env.TMPDIR === undefined) {
  try {
    accessSync(RAM, constants.W_OK);
    if (statfsSync(RAM).type === TMPFS_MAGIC) {
      process.env.IOTHUB_TUT_TEST_DISK_TMPDIR = tmpdir();
      process.env.TMPDIR = RAM;
    }
  } catch {
    // No such file system here: the system's temporary directory, as usual.
  }
}
