import { AsyncLocalStorage } from 'node:async_hooks';

// The environment variables the toolkit reads (connection strings, IOTHUB_TUT_HOME, NO_COLOR): the
// process's own, or those of one in-process run of the CLI (runCommandLine in src/cli/main.ts, which
// tests call with an environment per run, several at a time).

const scoped = new AsyncLocalStorage<NodeJS.ProcessEnv>();

/** The environment of the command being run. */
export function environment(): NodeJS.ProcessEnv {
  return scoped.getStore() ?? process.env;
}

/** Runs `action` (and everything it starts) with `env` as its environment. */
export function withEnvironment<T>(env: NodeJS.ProcessEnv, action: () => T): T {
  return scoped.run(env, action);
}
