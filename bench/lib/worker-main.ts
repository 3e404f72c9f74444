/**
 * The worker side of lib/workers.ts: waits for the 'start' message, runs `main` with its config,
 * reports what it returns as 'result' (or a failure as 'error'), and exits on 'stop'.
 * `main` may report along the way with `report`, and learn of 'stop' through `stopping`.
 */
export function workerMain<C>(main: (config: C, ctx: WorkerContext) => Promise<unknown>): void {
  const stop = new AbortController();
  const listeners: Array<(m: { type: string; [k: string]: any }) => void> = [];
  let finished = false;
  process.on('message', (m: { type: string; config?: C }) => {
    if (m.type === 'start') {
      main(m.config as C, { report, stopping: stop.signal, on: (l) => listeners.push(l) })
        .then(
          // cpuMs: what this process spent, so that reports can say which side was busy.
          (result) => report({ type: 'result', result, cpuMs: cpuMs() }),
          (err) => report({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
        )
        .finally(() => (finished = true));
    } else if (m.type === 'stop') {
      stop.abort();
      // A main still running gets a moment to close its clients; then go, whatever it holds.
      if (finished) process.exit(0);
      setTimeout(() => process.exit(0), 2_000);
    } else {
      for (const l of listeners) l(m);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

export interface WorkerContext {
  report(message: { type: string; [k: string]: any }): void;
  /** Aborted when the benchmark sends 'stop'. */
  stopping: AbortSignal;
  /** Other messages from the benchmark. */
  on(listener: (m: { type: string; [k: string]: any }) => void): void;
}

function report(message: { type: string; [k: string]: any }): void {
  process.send?.(message);
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
