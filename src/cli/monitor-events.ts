import type { Command } from 'commander';
import { resolveConnection } from '../clients/config.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import type { MonitoredEvent } from '../apps/monitor-events.js';
import { run, parsePositiveInt, parseSeconds, type Output } from './output.js';

function printEvent(out: Output, e: MonitoredEvent, withProperties: boolean): void {
  const { properties, systemProperties, ...shown } = e;
  out.result({ event: 'message', ...shown, ...(withProperties ? { properties, systemProperties } : {}) });
  const from = e.moduleId ? `${e.deviceId}/${e.moduleId}` : e.deviceId ?? '(unknown device)';
  out.line(out.color.cyan(`==== From: ${from} at ${e.enqueuedTime} ====`));
  out.line(typeof e.body === 'string' ? e.body : JSON.stringify(e.body, null, 2));
  if (withProperties) {
    out.line(out.color.dim('---- application properties ----'));
    out.line(JSON.stringify(properties, null, 2));
    out.line(out.color.dim('---- system properties ----'));
    out.line(JSON.stringify(systemProperties, null, 2));
  }
}

export function configureMonitorEvents(command: Command): void {
  command
    .option('--device-id <id>', 'only this device\'s messages (default: all devices)')
    .option('--count <n>', 'exit after this many messages', parsePositiveInt('--count'))
    .option('--timeout <s>', 'give up after this many seconds (exit 5 if --count messages did not arrive)', parseSeconds('--timeout'))
    .option('--properties', 'show application and system properties too')
    .option('--from-start', 'read every retained message, not only those sent from now on')
    .option('-c, --connection-string <cs>', 'Event Hub-compatible connection string (default: $EVENTHUB_CONNECTION_STRING, .env, or the local hub)')
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = resolveConnection('eventhub', opts.connectionString, (p) => p.eventHubConnectionString);
        const { monitorEvents } = await import('../apps/monitor-events.js');
        const stop = new AbortController();
        const abort = () => stop.abort();
        process.once('SIGINT', abort).once('SIGTERM', abort);
        try {
          const { received, timedOut } = await monitorEvents(connection.connectionString, {
            deviceId: opts.deviceId,
            count: opts.count,
            timeoutSeconds: opts.timeout,
            startPosition: opts.fromStart ? 'earliest' : 'latest',
            signal: stop.signal,
            onReady: (partitions) => {
              out.result({ event: 'ready', partitions: partitions.length });
              out.line(`Monitoring events from ${opts.deviceId ?? 'all devices'}${opts.fromStart ? ' (from the start)' : ''}... (press Ctrl-C to exit)`);
            },
            onEvent: (e) => printEvent(out, e, opts.properties === true),
          });
          out.result({ event: 'stopped', received });
          if (timedOut && opts.count !== undefined && received < opts.count) {
            throw new ToolkitError(`timed out after ${opts.timeout} s: received ${received} of ${opts.count} messages`, ExitCode.timeout);
          }
        } finally {
          process.off('SIGINT', abort).off('SIGTERM', abort);
        }
      }),
    );
}
