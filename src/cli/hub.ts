import { Option, type Command } from 'commander';
import { join } from 'node:path';
import { appendFileSync, writeFileSync } from 'node:fs';
import { run, parsePositiveInt } from './output.js';
import { toolkitHome, writeProfile, removeProfile } from '../clients/local-hub-profile.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { TIERS } from '../hub/throttling.js';
import { LOG_LEVELS } from '../hub/log.js';

export function configureHub(hub: Command): void {
  hub
    .command('start')
    .description('run a local IoT Hub until Ctrl-C; the other commands find it by themselves')
    .option('-p, --port <port>', 'TLS port for REST, MQTT and MQTT over WebSockets', parsePositiveInt('--port'), 8883)
    .option('--amqp-port <port>', 'plain-AMQP port of the Event Hub-compatible endpoint (where monitor-events reads)', parsePositiveInt('--amqp-port'), 5672)
    .option('--data-dir <dir>', 'where identities, twins, events and the CA are kept', join(toolkitHome(), 'hub'))
    .option('--in-memory', 'keep nothing on disk (a throwaway hub)')
    .addOption(new Option('--throttle <tier>', "apply IoT Hub's throttles of one unit of this tier (429 ThrottlingException, CONNACK 3)").choices(TIERS))
    .addOption(new Option('--log-level <level>', 'what the hub logs: errors only, up to one line per request and connection').choices(LOG_LEVELS).default('info'))
    .option('--log-file <path>', 'append the hub log to this file instead of stderr')
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const [{ LocalHub, DataDirError }, { createLog }, { installLastResort }] = await Promise.all([import('../hub/server.js'), import('../hub/log.js'), import('../hub/last-resort.js')]);
        const log = createLog(opts.logLevel, opts.logFile ? (line) => appendLogLine(opts.logFile, line) : undefined);
        const local = await LocalHub.start({ port: opts.port, eventHubPort: opts.amqpPort, dataDir: opts.dataDir, inMemory: opts.inMemory, throttle: opts.throttle, log }).catch((err: NodeJS.ErrnoException & { port?: number }) => {
          // Node names the port on a listen error; it tells which of the two listeners failed.
          const [port, flag] = err.port === opts.amqpPort && opts.amqpPort !== opts.port ? [opts.amqpPort, '--amqp-port'] : [opts.port, '--port'];
          if (err.code === 'EADDRINUSE') throw new ToolkitError(`port ${port} is in use: stop what runs there, or pick another with ${flag}`, ExitCode.unavailable);
          if (err.code === 'EACCES') throw new ToolkitError(`port ${port} needs root: pick one above 1023 with ${flag}`, ExitCode.unavailable);
          if (err instanceof DataDirError) throw new ToolkitError(err.message, ExitCode.unavailable);
          if (err.code === 'ENOSPC') throw new ToolkitError(`the disk holding ${opts.dataDir} is full: free some space, then start the hub again`, ExitCode.unavailable);
          throw err;
        });
        let caFile = local.tls.caFile;
        if (!caFile) {
          caFile = join(toolkitHome(), `ca-${process.pid}.pem`);
          writeFileSync(caFile, local.tls.ca, { mode: 0o644 });
        }
        const profile = {
          hostName: local.hostName,
          port: local.port,
          caFile,
          pid: process.pid,
          serviceConnectionString: local.serviceConnectionString(),
          eventHubConnectionString: local.eventHubConnectionString(),
        };
        writeProfile(profile);
        log.info('hub', `started on ${local.hostName}:${local.port} (Event Hub-compatible endpoint on ${local.eventHubPort}), pid ${process.pid}, data dir ${opts.inMemory ? '(in memory)' : opts.dataDir}`);
        out.result({ event: 'started', ...profile, dataDir: opts.inMemory ? null : opts.dataDir });
        out.heading(`Local IoT Hub running on ${local.hostName}:${local.port}`);
        out.field('Data dir', opts.inMemory ? '(in memory)' : opts.dataDir);
        if (opts.throttle) out.field('Throttling', `IoT Hub ${String(opts.throttle).toUpperCase()}, one unit`);
        out.field('CA certificate', caFile);
        out.field('Connection string', out.secret(profile.serviceConnectionString));
        out.field('Event Hub endpoint', out.secret(profile.eventHubConnectionString));
        out.line(out.color.dim('  Other terminals use this hub automatically. Other Node apps: NODE_EXTRA_CA_CERTS=' + caFile));
        out.line(out.color.dim('  Press Ctrl-C to stop.'));
        let fatal: string | undefined;
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          installLastResort(log, (reason) => {
            fatal = reason;
            resolve();
          });
        });
        removeProfile(process.pid);
        await local.stop();
        if (fatal) throw new ToolkitError(`the hub stopped: ${fatal} (the hub log has each one)`, ExitCode.failure);
        log.info('hub', 'stopped');
        out.line('Hub stopped.');
        out.result({ event: 'stopped' });
      }),
    );
}

/** A line of --log-file; one that cannot be written (a full disk) goes to stderr rather than fail what logged it. */
function appendLogLine(file: string, line: string): void {
  try {
    appendFileSync(file, line, { mode: 0o600 });
  } catch {
    process.stderr.write(line);
  }
}
