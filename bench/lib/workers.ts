import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** A message between the benchmark and a worker process: a type, and whatever that type carries. */
export interface WorkerMessage {
  type: string;
  [field: string]: any;
}

let execArgv: string[] = [];

/** Write a V8 CPU profile of every worker started from now on into `dir`. */
export function profileWorkers(dir: string): void {
  execArgv = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

/**
 * A load-generating process (dist/bench/workers/<name>.js), never the hub's: it gets its config
 * with the 'start' message and reports through typed messages ('ready', 'result', 'error'...).
 */
export class Worker {
  private readonly child: ChildProcess;
  private readonly inbox: WorkerMessage[] = [];
  private wake: () => void = () => {};
  private exited = false;

  constructor(
    readonly name: string,
    config: object,
  ) {
    this.child = fork(fileURLToPath(new URL(`../workers/${name}.js`, import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv,
    });
    this.child.on('message', (m: WorkerMessage) => {
      this.inbox.push(m);
      this.wake();
    });
    this.child.on('exit', () => {
      this.exited = true;
      this.wake();
    });
    this.child.send({ type: 'start', config });
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(message: WorkerMessage): void {
    if (!this.exited) this.child.send(message);
  }

  /** The next message of `type` (bounded); an 'error' message from the worker is thrown. */
  async next<T = WorkerMessage>(type: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const failed = this.inbox.findIndex((m) => m.type === 'error');
      if (failed >= 0) throw new Error(`worker ${this.name}: ${this.inbox[failed].message}`);
      const at = this.inbox.findIndex((m) => m.type === type);
      if (at >= 0) return this.inbox.splice(at, 1)[0] as T;
      if (this.exited) throw new Error(`worker ${this.name} exited before '${type}'`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`worker ${this.name}: timed out waiting for '${type}'`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Asks the worker to stop, then kills it if it has not exited within the bound. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.exited) return;
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    if (!this.exited) await once(this.child, 'exit');
    clearTimeout(timer);
  }
}

/** Runs workers to their 'result' and stops them; the results in the order given. */
export async function runAll<T>(workers: Worker[], timeoutMs: number): Promise<T[]> {
  try {
    return await Promise.all(workers.map((w) => w.next<{ result: T }>('result', timeoutMs).then((m) => m.result)));
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}
