import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { runCliInProcess, type CliResult } from './cli.js';

// A worker thread that runs many CLI command lines (runCommandLine, as the bin runs one), each with
// its own output and environment, loading the SDKs once for all of them. For the error table's device
// commands: a subprocess each would load the device SDK each time, and in the test's own thread a
// closed client's leftover timers would keep it alive; terminating the thread ends them, as a
// subprocess's exit would. Like a subprocess, the thread dies of an uncaught error or an unhandled
// rejection, and every run still in it fails with that error.

interface Request {
  id: number;
  args: string[];
  env: Record<string, string | undefined>;
}
type Reply = { id: number; result: CliResult } | { id: number; error: string };

/** Runs command lines in one worker thread until closed. */
export class CliThread {
  private readonly worker = new Worker(new URL(import.meta.url), { workerData: { cliThread: true } });
  private readonly pending = new Map<number, { resolve(r: CliResult): void; reject(e: Error): void }>();
  private nextId = 0;
  private died: Error | undefined;
  /** What the thread died of, if it did: an error no run was waiting on still fails the caller, at close. */
  private crashed: Error | undefined;

  constructor() {
    this.worker.on('message', (reply: Reply) => {
      const run = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if ('error' in reply) run?.reject(new Error(reply.error));
      else run?.resolve(reply.result);
    });
    const fail = (err: Error) => {
      this.died ??= err;
      for (const run of this.pending.values()) run.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', (err: Error) => {
      this.crashed = new Error(`the CLI's thread died: ${err.stack ?? err.message}`);
      fail(this.crashed);
    });
    this.worker.on('exit', (code) => fail(new Error(`the CLI's thread exited (${code})`)));
  }

  run(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
    if (this.died) return Promise.reject(this.died);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, args, env } satisfies Request);
    });
  }

  /** Ends the thread, and with it whatever the runs left behind; rejects if it had died of an error. */
  async close(): Promise<void> {
    await this.worker.terminate();
    if (this.crashed) throw this.crashed;
  }
}

if (!isMainThread && (workerData as { cliThread?: boolean } | undefined)?.cliThread) {
  // Names under .invalid fail to resolve here as in a subprocess with NO_DNS (the preload cannot apply to a thread).
  await import('./no-dns.js');
  parentPort!.on('message', ({ id, args, env }: Request) => {
    runCliInProcess(args, env).then(
      (result) => parentPort!.postMessage({ id, result } satisfies Reply),
      (err: Error) => parentPort!.postMessage({ id, error: err.stack ?? String(err) } satisfies Reply),
    );
  });
}
