import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../bin/iothub-tut', import.meta.url));

/** What the benchmark knows about the hub under test: only what `hub start --json` prints, as a user would. */
export interface HubUnderTest {
  pid: number;
  port: number;
  ca: string;
  caFile: string;
  hostName: string;
  serviceConnectionString: string;
  eventHubConnectionString: string;
  /** The IOTHUB_TUT_HOME the hub wrote its profile to: CLI runs in it find this hub. */
  home: string;
  dataDir: string;
  /** The hub's resident set size in bytes (Linux /proc), or null where unavailable. */
  rss(): number | null;
  stop(): Promise<void>;
}

export interface HubStartOptions {
  /** Write a V8 CPU profile of the hub process into this directory when it stops. */
  cpuProfDir?: string;
  /** Start the hub with this message routing file (`hub start --routing`). */
  routingFile?: string;
}

/** Starts `iothub-tut hub start --port 0 --amqp-port 0 --data-dir <fresh tmp> --json` as its own process. */
export async function startHub(options: HubStartOptions = {}): Promise<HubUnderTest> {
  const home = mkdtempSync(join(tmpdir(), 'iothub-bench-home-'));
  const dataDir = join(home, 'hub-data');
  const nodeArgs = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : [];
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      BIN,
      ...['hub', 'start', '--port', '0', '--amqp-port', '0', '--data-dir', dataDir, '--json', '--show-secrets'],
      ...(options.routingFile ? ['--routing', options.routingFile] : []),
    ],
    {
      env: { ...process.env, IOTHUB_TUT_HOME: home, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const started = await firstJsonLine(child, 30_000).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`the hub did not start: ${err.message}; stderr: ${stderr}`);
  });
  return {
    pid: child.pid!,
    port: started.port,
    ca: readFileSync(started.caFile, 'utf8'),
    caFile: started.caFile,
    hostName: started.hostName,
    serviceConnectionString: started.serviceConnectionString,
    eventHubConnectionString: started.eventHubConnectionString,
    home,
    dataDir,
    rss: () => rssOf(child.pid!),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await once(child, 'close');
        clearTimeout(timer);
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}

function firstJsonLine(child: ChildProcess, timeoutMs: number): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`not JSON: ${line}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
  });
}

export function rssOf(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used so far (Linux /proc), or null. */
export function cpuSecondsOf(pid: number, thread?: 'main'): number | null {
  try {
    // A process's main thread is the task whose id is the process's.
    const fields = readFileSync(thread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
      .split(') ')[1]
      .split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}
