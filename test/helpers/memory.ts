import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// V8's gc(), exposed at run time (the test runner gives no --expose-gc), for tests that measure
// what stays live rather than what has not been collected yet.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Collects garbage, then returns process.memoryUsage(): what is live. Twice: V8 frees the memory of
 * dead ArrayBuffers on a background thread, and a collection first finishes what the last one began.
 */
export function liveMemory(): NodeJS.MemoryUsage {
  gc();
  gc();
  return process.memoryUsage();
}
