import { Option, type Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, type Output } from './output.js';
import { parseConsumerGroup, parseContainerName, parseNonNegativeInt, parseSeconds, checkStorageConnectionString } from './parsers.js';
import { examples } from './help.js';
import {
  isRunning,
  processStartTime,
  removeProfile,
  runningHubs,
  selectedHub,
  toolkitHome,
  writeInMemoryCa,
  writeProfile,
  type LocalHubProfile,
} from '../clients/local-hub-profile.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { TIERS, type Tier } from '../hub/throttling.js';
import { LOG_LEVELS, type LogLevel } from '../hub/log.js';
import type { RoutingSettings } from '../hub/routing/routing-settings.js';
import {
  DEFAULT_EVENT_HUB_PORT,
  DEFAULT_PORT,
  DEFAULT_UPLOAD_CONTAINER,
  STANDARD_PORTS,
  STORAGE_CERT_FILE,
  STORAGE_KEY_FILE,
} from '../hub/defaults.js';

interface StartOptions {
  port: number;
  standardPorts?: boolean;
  amqpPort: number;
  dataDir: string;
  inMemory?: boolean;
  throttle?: Tier;
  logLevel: LogLevel;
  logFile?: string;
  detach?: boolean;
  trustedCa: string[];
  consumerGroup: string[];
  fileUpload?: string;
  fileUploadContainer?: string;
  routing?: string;
}

/** The env var `--file-upload` is read from when not given: a secret kept out of the process list (and how --detach passes it on). */
const FILE_UPLOAD_ENV = 'IOTHUB_TUT_FILE_UPLOAD';

/** How long `hub start --detach` waits for the hub to accept connections, and how often it looks. */
const DETACHED_START_TIMEOUT_MS = 60_000;
const POLL_MS = 100;

const START_EXAMPLES = examples(
  'hub start --data-dir ./hub-data --throttle s1 --log-level debug',
  'hub start --in-memory --port 0 --amqp-port 0 --json',
  'hub start --standard-ports',
);
const STANDARD_PORT_LIST = STANDARD_PORTS.map((p) => `${p.port} (${p.serves})`).join(', ');

export function configureHub(hub: Command): void {
  hub
    .addHelpText('after', examples('hub start --detach --port 0 --amqp-port 0 --json', 'hub status', 'hub stop'))
    .command('start')
    .addHelpText('after', START_EXAMPLES)
    .description('run a local IoT Hub until Ctrl-C (or in the background with --detach); the other commands find it by themselves')
    .option(
      '-p, --port <port>',
      'TLS port for REST, MQTT and MQTT over WebSockets (0: any free port)',
      parseNonNegativeInt('--port'),
      DEFAULT_PORT,
    )
    .addOption(
      new Option(
        '--standard-ports',
        `listen where IoT Hub does, ${STANDARD_PORT_LIST}, so that any SDK app needs only the CA (ports below 1024 need root or CAP_NET_BIND_SERVICE)`,
      ).conflicts('port'),
    )
    .option(
      '--amqp-port <port>',
      'plain-AMQP port of the Event Hub-compatible endpoint, where monitor-events reads (0: any free port)',
      parseNonNegativeInt('--amqp-port'),
      DEFAULT_EVENT_HUB_PORT,
    )
    .option('--data-dir <dir>', 'where identities, twins, events and the CA are kept (one hub at a time)', join(toolkitHome(), 'hub'))
    .option('--in-memory', 'keep nothing on disk (a throwaway hub)')
    .addOption(
      new Option('--throttle <tier>', "apply IoT Hub's throttles of one unit of this tier (429 ThrottlingException, CONNACK 3)").choices(
        TIERS,
      ),
    )
    .addOption(
      new Option('--log-level <level>', 'what the hub logs: errors only, up to one line per request and connection')
        .choices(LOG_LEVELS)
        .default('info'),
    )
    .option('--log-file <path>', 'append the hub log to this file instead of stderr')
    .option(
      '--trusted-ca <pem>',
      "a CA certificate (PEM file) whose certificates 'certificateAuthority' devices may connect with (repeatable)",
      (file: string, files: string[]) => [...files, resolve(file)],
      [] as string[],
    )
    .option(
      '--consumer-group <name>',
      "a consumer group of the Event Hub-compatible endpoint beside $Default, as 'az iot hub consumer-group create' makes one (repeatable)",
      (name: string, names: string[]) => {
        // Names are case-insensitive, and $Default is always there.
        const known = ['$default', ...names.map((n) => n.toLowerCase())];
        return known.includes(parseConsumerGroup(name).toLowerCase()) ? names : [...names, name];
      },
      [] as string[],
    )
    .addOption(
      new Option(
        '--file-upload <connection string>',
        `file upload: the storage account devices upload to (its connection string; its blob endpoint https, e.g. Azurite's with --cert and --key)`,
      ).env(FILE_UPLOAD_ENV),
    )
    .option(
      '--file-upload-container <name>',
      `the blob container of --file-upload (default ${DEFAULT_UPLOAD_CONTAINER}; made when missing)`,
      parseContainerName,
    )
    .option(
      '--routing <file>',
      "message routing as JSON (properties.routing of 'az iot hub show'): routes, fallback route, enrichments, storage container endpoints",
      (file: string) => resolve(file),
    )
    .option(
      '--detach',
      'run in the background: return once the hub accepts connections, logging to <data dir>/hub.log (in memory: hub-in-memory.log in the toolkit home) unless --log-file',
    )
    .action((opts: StartOptions, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const fileUpload = fileUploadOf(opts); // usage errors before anything starts
        const routing = opts.routing === undefined ? undefined : await readRouting(opts.routing);
        return opts.detach ? startDetached(opts, out) : startHere(opts, fileUpload, routing, out);
      }),
    );

  hub
    .command('status')
    .addHelpText('after', examples('hub status', 'hub status --json --show-secrets', 'hub status --hub ./hub-data'))
    .description(
      'show the running local hubs (or the one --hub names): pid, ports, data dir, uptime, connection strings; exit 8 when none runs',
    )
    .action((_opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        // With --hub, that hub (selectedHub throws when it does not run); else every one.
        const hubs = cmd.optsWithGlobals().hub === undefined ? runningHubs() : [selectedHub()!];
        if (hubs.length === 0) throw noHubRunning();
        for (const hub of hubs) {
          const uptimeSeconds = Math.max(0, Math.round((Date.now() - Date.parse(hub.startedAt)) / 1000));
          // Not the login link: it may be spent; a signed-in page gives another.
          const { dashboardUrl: _, ...status } = shown(hub);
          out.result({ ...status, uptimeSeconds });
          out.heading(`Local IoT Hub on ${hub.hostName}:${hub.port} (pid ${hub.pid})`);
          out.field('Uptime', formatDuration(uptimeSeconds));
          printHub(out, hub);
          out.field('Dashboard', `https://${hub.hostName}:${hub.port}/ui/ (sign in with the link 'hub start' printed)`);
        }
      }),
    );

  hub
    .command('stop')
    .addHelpText('after', examples('hub stop', 'hub stop --hub ./hub-data --timeout 60'))
    .description('stop the running local hub (or the one --hub names) as Ctrl-C does, and wait until it has stopped')
    .option('--timeout <s>', 'give up waiting after this many seconds (exit 5)', parseSeconds('--timeout'), 30)
    .action((opts: { timeout: number }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const hub = selectedHub();
        if (!hub) throw noHubRunning();
        try {
          process.kill(hub.pid, 'SIGTERM');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // ESRCH: it has just stopped
        }
        const deadline = Date.now() + opts.timeout * 1000;
        while (isRunning(hub)) {
          if (Date.now() > deadline) {
            throw new ToolkitError(
              `the hub (pid ${hub.pid}) did not stop within ${opts.timeout} s; 'kill -9 ${hub.pid}' ends it (acknowledged writes survive)`,
              ExitCode.timeout,
            );
          }
          await sleep(POLL_MS);
        }
        removeProfile(hub.pid); // already gone, unless the hub died while stopping
        out.result({ event: 'stopped', pid: hub.pid, dataDir: hub.dataDir });
        out.line(`Hub stopped (pid ${hub.pid}, data dir ${hub.dataDir ?? '(in memory)'}).`);
      }),
    );
}

/** `hub start` in this process: runs until SIGINT (Ctrl-C), SIGTERM (`hub stop`) or SIGHUP (its terminal closed). */
async function startHere(
  opts: StartOptions,
  fileUpload: HubFileUpload | undefined,
  routing: RoutingSettings | undefined,
  out: Output,
): Promise<void> {
  // Listened for from the start: a signal while the hub starts stops it once it has started, cleanly.
  const stopRequested = new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve());
  });
  const [{ LocalHub, DataDirError }, { createLog }, { DataDirInUseError }, { installLastResort }, { parseTrustedCas, TrustedCaError }] =
    await Promise.all([
      import('../hub/server.js'),
      import('../hub/log.js'),
      import('../hub/data-dir-lock.js'),
      import('../hub/last-resort.js'),
      import('../hub/auth/certificates.js'),
    ]);
  const dataDir = opts.inMemory ? null : resolve(opts.dataDir);
  if (opts.logFile) checkLogFile(opts.logFile);
  const log = createLog(opts.logLevel, opts.logFile ? (line) => appendLogLine(opts.logFile!, line) : undefined);
  const trustedCas = opts.trustedCa.map(readTrustedCa);
  try {
    parseTrustedCas(trustedCas, opts.trustedCa);
  } catch (err) {
    if (err instanceof TrustedCaError) throw new ToolkitError(`--trusted-ca: ${err.message}`, ExitCode.usage);
    throw err;
  }
  const local = await LocalHub.start({
    port: opts.port,
    standardPorts: opts.standardPorts,
    eventHubPort: opts.amqpPort,
    dataDir: dataDir ?? undefined,
    inMemory: opts.inMemory,
    throttle: opts.throttle,
    log,
    trustedCas,
    consumerGroups: opts.consumerGroup,
    ...(fileUpload ? { fileUpload } : {}),
    ...(routing ? { routing } : {}),
  }).catch((err: NodeJS.ErrnoException & { port?: number }) => {
    if (err instanceof DataDirInUseError) {
      const holder = err.holder;
      const where =
        holder?.port === undefined
          ? ' (still starting)'
          : ` on port ${holder.port} (Event Hub-compatible endpoint on ${holder.eventHubPort})`;
      throw new ToolkitError(
        `the data dir ${err.dataDir} is in use by ${holder ? `the hub with pid ${holder.pid}${where}` : 'another hub'}: ` +
          `stop it with 'iothub-tut hub stop --hub ${err.dataDir}', or pick another --data-dir`,
        ExitCode.unavailable,
      );
    }
    // Node names the port on a listen error; it tells which of the listeners failed.
    const amqp = err.port === opts.amqpPort && opts.amqpPort !== opts.port;
    const port = amqp ? opts.amqpPort : opts.standardPorts ? err.port : opts.port;
    const instead = amqp
      ? 'pick another with --amqp-port'
      : opts.standardPorts
        ? 'drop --standard-ports (one port, --port)'
        : 'pick another with --port';
    if (err.code === 'EADDRINUSE')
      throw new ToolkitError(`port ${port} is in use: stop what runs there, or ${instead}`, ExitCode.unavailable);
    if (err.code === 'EACCES') {
      throw new ToolkitError(
        `port ${port} needs privileges: run as root (or in a container), allow low ports with 'sysctl net.ipv4.ip_unprivileged_port_start=${port}', ` +
          `give node the capability with 'setcap cap_net_bind_service=+ep ${process.execPath}', or ${instead}`,
        ExitCode.unavailable,
      );
    }
    if (err instanceof DataDirError) throw new ToolkitError(err.message, ExitCode.unavailable);
    if (err.code === 'ENOSPC')
      throw new ToolkitError(`the disk holding ${dataDir} is full: free some space, then start the hub again`, ExitCode.unavailable);
    throw err;
  });
  // What no handler caught is logged and the hub serves on; a storm of them stops it (last-resort.ts).
  let fatal: string | undefined;
  const stopped = Promise.race([
    stopRequested,
    new Promise<void>((resolve) =>
      installLastResort(log, (reason) => {
        fatal = reason;
        resolve();
      }),
    ),
  ]);
  try {
    const profile: LocalHubProfile = {
      hostName: local.hostName,
      port: local.port,
      ...(opts.standardPorts ? { standardPorts: true } : {}),
      eventHubPort: local.eventHubPort,
      caFile: local.tls.caFile ?? writeInMemoryCa(local.tls.ca),
      pid: process.pid,
      processStart: processStartTime(process.pid),
      dataDir,
      startedAt: new Date().toISOString(),
      ...(opts.logFile ? { logFile: resolve(opts.logFile) } : {}),
      ...(opts.throttle ? { throttle: opts.throttle } : {}),
      ...(opts.consumerGroup.length > 0 ? { consumerGroups: opts.consumerGroup } : {}),
      ...(local.fileUploads ? { fileUpload: fileUploadProfile(local.fileUploads.settings, dataDir) } : {}),
      ...(routing ? { routing: { file: opts.routing!, routes: routing.routes.length, fallback: routing.fallback.isEnabled } } : {}),
      serviceConnectionString: local.serviceConnectionString(),
      eventHubConnectionString: local.eventHubConnectionString(),
      dashboardUrl: local.dashboard.loginUrl(),
    };
    writeProfile(profile);
    log.info(
      'hub',
      `started on ${local.hostName}:${local.port} (Event Hub-compatible endpoint on ${local.eventHubPort}), pid ${process.pid}, data dir ${dataDir ?? '(in memory)'}`,
    );
    printStarted(out, profile);
    out.line(out.color.dim('  Press Ctrl-C to stop.'));
    await stopped;
  } finally {
    // The profile goes first, so that no command picks a hub that is stopping; the lock goes with the hub.
    removeProfile(process.pid);
    await local.stop();
  }
  if (fatal) throw new ToolkitError(`the hub stopped: ${fatal} (the hub log has each one)`, ExitCode.failure);
  log.info('hub', 'stopped');
  out.line('Hub stopped.');
  out.result({ event: 'stopped' });
}

/** --routing's file, read and checked (its conditions too): each fault is a usage error naming the file. */
async function readRouting(file: string): Promise<RoutingSettings> {
  const [{ parseRoutingSettings, RoutingSettingsError }, { compileRouteCondition }, { HubError }] = await Promise.all([
    import('../hub/routing/routing-settings.js'),
    import('../hub/query/route-condition.js'),
    import('../hub/errors.js'),
  ]);
  const fault = (why: string) => new ToolkitError(`--routing: ${file}: ${why}`, ExitCode.usage);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fault(`cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fault(`not JSON (${(err as Error).message})`);
  }
  try {
    const settings = parseRoutingSettings(json);
    for (const { name, condition } of [...settings.routes, { name: '$fallback', condition: settings.fallback.condition }]) {
      try {
        compileRouteCondition(condition);
      } catch (err) {
        if (err instanceof HubError) throw fault(`the condition of route '${name}' is not a routing query: ${err.message}`);
        throw err;
      }
    }
    return settings;
  } catch (err) {
    if (err instanceof RoutingSettingsError) throw fault(err.message);
    throw err;
  }
}

/** --file-upload's settings; its container alone is a usage error. */
type HubFileUpload = { connectionString: string; container: string };

function fileUploadOf(opts: StartOptions): HubFileUpload | undefined {
  if (!opts.fileUpload) {
    if (opts.fileUploadContainer)
      throw new ToolkitError('--file-upload-container needs --file-upload (the storage account)', ExitCode.usage);
    return undefined;
  }
  // Checked here rather than by the option's parser, whose error would print the value, key and all.
  checkStorageConnectionString(opts.fileUpload);
  return { connectionString: opts.fileUpload, container: opts.fileUploadContainer ?? DEFAULT_UPLOAD_CONTAINER };
}

/** What the profile tells of file upload: where blobs go, and the certificate the hub wrote for the storage emulator. */
function fileUploadProfile(
  settings: { storage: { blobEndpoint: string }; container: string },
  dataDir: string | null,
): LocalHubProfile['fileUpload'] {
  return {
    containerUrl: `${settings.storage.blobEndpoint}/${settings.container}`,
    ...(dataDir
      ? { storageCertFile: join(dataDir, 'tls', STORAGE_CERT_FILE), storageKeyFile: join(dataDir, 'tls', STORAGE_KEY_FILE) }
      : {}),
  };
}

function readTrustedCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ToolkitError(
      `--trusted-ca: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      ExitCode.usage,
    );
  }
}

/**
 * `hub start --detach`: the same hub in a process of its own (its own session, so a closed terminal
 * does not end it; its output to the log file, so nothing ties it to this process), and this process
 * returns once that hub has written its profile, which it does once it accepts connections.
 */
async function startDetached(opts: StartOptions, out: Output): Promise<void> {
  const logFile = resolve(opts.logFile ?? (opts.inMemory ? join(toolkitHome(), 'hub-in-memory.log') : join(opts.dataDir, 'hub.log')));
  mkdirSync(dirname(logFile), { recursive: true, mode: 0o700 });
  const fd = openSync(logFile, 'a', 0o600);
  const logStart = fstatSync(fd).size;
  const args = [
    process.argv[1], // this CLI's entry point
    'hub',
    'start',
    ...(opts.standardPorts ? ['--standard-ports'] : ['--port', String(opts.port)]),
    '--amqp-port',
    String(opts.amqpPort),
    ...(opts.inMemory ? ['--in-memory'] : ['--data-dir', resolve(opts.dataDir)]),
    ...(opts.throttle ? ['--throttle', opts.throttle] : []),
    ...opts.trustedCa.flatMap((file) => ['--trusted-ca', file]),
    ...opts.consumerGroup.flatMap((name) => ['--consumer-group', name]),
    ...(opts.fileUploadContainer ? ['--file-upload-container', opts.fileUploadContainer] : []),
    ...(opts.routing ? ['--routing', opts.routing] : []),
    '--log-level',
    opts.logLevel,
    '--log-file',
    logFile,
  ];
  // The storage connection string holds a key: it goes to the child in its environment, not its command line.
  const env = { ...process.env, ...(opts.fileUpload ? { [FILE_UPLOAD_ENV]: opts.fileUpload } : {}) };
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd], env });
  } finally {
    closeSync(fd);
  }
  child.unref();
  let exitCode: number | undefined;
  child.once('exit', (code) => (exitCode = code ?? ExitCode.failure)).once('error', () => (exitCode = ExitCode.failure));
  const deadline = Date.now() + DETACHED_START_TIMEOUT_MS;
  for (;;) {
    const profile = runningHubs().find((h) => h.pid === child.pid);
    if (profile) {
      printStarted(out, profile);
      out.line(
        out.color.dim(
          `  Running in the background (pid ${profile.pid}). Stop it with 'iothub-tut hub stop${runningHubs().length > 1 ? ` --hub ${profile.dataDir ?? profile.pid}` : ''}'.`,
        ),
      );
      return;
    }
    if (exitCode !== undefined) throw startFailed(logFile, logStart, exitCode);
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new ToolkitError(`the hub did not start within ${DETACHED_START_TIMEOUT_MS / 1000} s (see ${logFile})`, ExitCode.timeout);
    }
    await sleep(POLL_MS);
  }
}

/** The detached hub's own one-line error (from its log), with its exit code. */
function startFailed(logFile: string, logStart: number, exitCode: number): ToolkitError {
  const written = readFileSync(logFile).subarray(logStart).toString('utf8');
  const reason = [...written.matchAll(/^error: (.*)$/gm)].pop()?.[1];
  return new ToolkitError(reason ?? `the hub exited (code ${exitCode}) before it started; see ${logFile}`, exitCode || ExitCode.failure);
}

/** What a foreground start and a detached one print once the hub accepts connections. */
function printStarted(out: Output, hub: LocalHubProfile): void {
  out.result({ event: 'started', ...shown(hub) });
  out.heading(`Local IoT Hub running on ${hub.hostName}:${hub.port}`);
  printHub(out, hub);
  // The login link stays whole: it is how the browser signs in (as Jupyter prints one).
  if (hub.dashboardUrl) out.field('Dashboard', hub.dashboardUrl);
  out.line(
    out.color.dim(
      '  Other terminals use this hub automatically. Other Node apps: NODE_EXTRA_CA_CERTS=' +
        hub.caFile +
        (hub.standardPorts ? '' : `, and for device apps ';GatewayHostName=${hub.hostName}:${hub.port}' in the connection string`),
    ),
  );
}

function printHub(out: Output, hub: LocalHubProfile): void {
  out.field(
    'Ports',
    hub.standardPorts
      ? `${STANDARD_PORT_LIST}; Event Hub-compatible ${hub.eventHubPort}`
      : `${hub.port} (TLS: REST, MQTT, MQTT over WebSockets); Event Hub-compatible ${hub.eventHubPort}`,
  );
  out.field('Data dir', hub.dataDir ?? '(in memory)');
  if (hub.throttle) out.field('Throttling', `IoT Hub ${hub.throttle.toUpperCase()}, one unit`);
  if (hub.consumerGroups) out.field('Consumer groups', ['$Default', ...hub.consumerGroups].join(', '));
  if (hub.fileUpload) {
    out.field('File upload', hub.fileUpload.containerUrl);
    if (hub.fileUpload.storageCertFile)
      out.field('Storage cert', `${hub.fileUpload.storageCertFile} (key ${hub.fileUpload.storageKeyFile})`);
  }
  if (hub.routing) {
    const { file, routes, fallback } = hub.routing;
    out.field('Routing', `${file} (${routes} route${routes === 1 ? '' : 's'}, fallback route ${fallback ? 'on' : 'off'})`);
  }
  if (hub.logFile) out.field('Log file', hub.logFile);
  out.field('CA certificate', hub.caFile);
  out.field('Connection string', out.secret(hub.serviceConnectionString));
  if (hub.eventHubConnectionString) out.field('Event Hub endpoint', out.secret(hub.eventHubConnectionString));
}

/** A profile as `--json` shows it (the process start time only tells processes apart). */
function shown(hub: LocalHubProfile): Omit<LocalHubProfile, 'processStart'> {
  const { processStart: _, ...rest } = hub;
  return rest;
}

function noHubRunning(): ToolkitError {
  return new ToolkitError(
    "No local hub is running: start one with 'iothub-tut hub start' (add --detach to run it in the background).",
    ExitCode.unavailable,
  );
}

/** 3725 → '1h 02m 05s'. */
function formatDuration(seconds: number): string {
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor((seconds % 3600) / 60), seconds % 60];
  const pad = (n: number) => String(n).padStart(2, '0');
  return h ? `${h}h ${pad(m)}m ${pad(s)}s` : m ? `${m}m ${pad(s)}s` : `${s}s`;
}
/** A --log-file that cannot be opened for appending is a usage error, before the hub starts. */
function checkLogFile(file: string): void {
  try {
    closeSync(openSync(file, 'a', 0o600));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'its directory does not exist' : (err as Error).message;
    throw new ToolkitError(`cannot write the log file ${file}: ${reason}`, ExitCode.usage);
  }
}

/** A line of --log-file; one that cannot be written (a full disk) goes to stderr rather than fail what logged it. */
function appendLogLine(file: string, line: string): void {
  try {
    appendFileSync(file, line, { mode: 0o600 });
  } catch {
    process.stderr.write(line);
  }
}
