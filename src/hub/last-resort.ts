import type { HubLog } from './log.js';

/** This many unexpected errors within STORM_MS are no longer one handler's slip: the hub stops. */
const STORM_ERRORS = 50;
const STORM_MS = 10_000;

/**
 * The hub process's last resort (`hub start`): an exception or a promise rejection that nothing
 * handled is logged with its stack, and the hub keeps serving. One failed handler leaves the rest
 * sound (every acknowledged write is a committed SQLite transaction), where ending the process would
 * cut every client off. A storm of them (STORM_ERRORS within STORM_MS) means the hub cannot serve:
 * then `stop` is called once, with a one-line reason. Returns what removes the handlers.
 */
export function installLastResort(log: HubLog, stop: (reason: string) => void): () => void {
  const recent: number[] = [];
  let stopping = false;
  const handler = (kind: string) => (err: unknown) => {
    log.error('hub', `${kind} that nothing handled; the hub goes on: ${(err as Error)?.stack ?? String(err)}`);
    const now = Date.now();
    recent.push(now);
    while (recent[0]! <= now - STORM_MS) recent.shift();
    if (recent.length >= STORM_ERRORS && !stopping) {
      stopping = true;
      const first = String((err as Error)?.message ?? err).split('\n')[0];
      stop(`${recent.length} unexpected errors within ${STORM_MS / 1000} s, the last: ${first}`);
    }
  };
  const onException = handler('an exception');
  const onRejection = handler('a promise rejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
