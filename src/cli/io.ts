import { AsyncLocalStorage } from 'node:async_hooks';

/** Where the CLI writes: a process's stdout or stderr, or a test's buffer. */
export interface Writer {
  write(text: string): unknown;
  /** A terminal (colors, live progress); absent for a buffer. */
  isTTY?: boolean;
}

/** What one run of the CLI (runCommandLine) prints to and reads its environment variables from. */
export interface CliIo {
  stdout: Writer;
  stderr: Writer;
  env: NodeJS.ProcessEnv;
}

interface CliRun {
  io: CliIo;
  exitCode?: number;
}

// A run's I/O follows its async calls, so that runs in one process (tests) print apart.
const runs = new AsyncLocalStorage<CliRun>();

/** The I/O of the run in progress; the process's own outside of one. */
export function cliIo(): CliIo {
  return runs.getStore()?.io ?? { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** Runs `action` as one run of the CLI with `io`; resolves to the exit code its command set (0 if none did). */
export async function asRun(io: CliIo, action: () => Promise<number | undefined>): Promise<number> {
  const run: CliRun = { io };
  return runs.run(run, async () => (await action()) ?? run.exitCode ?? 0);
}

/** Sets the exit code of the run in progress (a command's result). */
export function setExitCode(code: number): void {
  const run = runs.getStore();
  if (run) run.exitCode = code;
  else process.exitCode = code;
}
