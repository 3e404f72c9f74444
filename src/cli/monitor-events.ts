import type { Command } from 'commander';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import type { MonitoredEvent } from '../apps/monitor-events.js';
import { run, type Output } from './output.js';
import { countAndTimeoutOptions, eventHubConnection, eventHubConnectionOption } from './options.js';
import { untilInterrupted } from './interrupt.js';
import { examples } from './help.js';
import { parseConsumerGroup } from './parsers.js';

function printEvent(out: Output, e: MonitoredEvent, withProperties: boolean): void {
  const { properties, systemProperties, ...shown } = e;
  out.result({ event: 'message', ...shown, ...(withProperties ? { properties, systemProperties } : {}) });
  const from = e.moduleId ? `${e.deviceId}/${e.moduleId}` : (e.deviceId ?? '(unknown device)');
  // IoT Hub's own events (routed twin changes, lifecycle and connection events) say what they are.
  const opType = typeof properties.opType === 'string' ? `: ${properties.opType}` : '';
  const what = e.source && e.source !== 'Telemetry' ? ` (${e.source}${opType})` : '';
  out.line(out.color.cyan(`==== From: ${from}${what} at ${e.enqueuedTime} ====`));
  out.line(typeof e.body === 'string' ? e.body : JSON.stringify(e.body, null, 2));
  if (withProperties) {
    out.line(out.color.dim('---- application properties ----'));
    out.line(JSON.stringify(properties, null, 2));
    out.line(out.color.dim('---- system properties ----'));
    out.line(JSON.stringify(systemProperties, null, 2));
  }
}

export function configureMonitorEvents(command: Command): void {
  command.option('-d, --device-id <id>', "only this device's messages (default: all devices)");
  countAndTimeoutOptions(command, 'messages')
    .option('--properties', 'show application and system properties too')
    .option('--from-start', 'read every retained message, not only those sent from now on')
    .option('--consumer-group <name>', 'the consumer group to read as', parseConsumerGroup, '$Default');
  eventHubConnectionOption(command)
    .addHelpText(
      'after',
      examples(
        'monitor-events --properties',
        'monitor-events -d myFirstDevice --count 5 --timeout 30 --json',
        'monitor-events --from-start -c "$EVENTHUB_CONNECTION_STRING" --consumer-group analytics',
      ),
    )
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = eventHubConnection(opts);
        const { monitorEvents } = await import('../apps/monitor-events.js');
        const { received, timedOut } = await untilInterrupted((signal) =>
          monitorEvents(connection, {
            deviceId: opts.deviceId,
            consumerGroup: opts.consumerGroup,
            count: opts.count,
            timeoutSeconds: opts.timeout,
            startPosition: opts.fromStart ? 'earliest' : 'latest',
            signal,
            onReady: (partitions) => {
              out.result({ event: 'ready', partitions: partitions.length });
              out.line(
                `Monitoring events from ${opts.deviceId ?? 'all devices'}${opts.fromStart ? ' (from the start)' : ''}... (press Ctrl-C to exit)`,
              );
            },
            onEvent: (e) => printEvent(out, e, opts.properties === true),
          }),
        );
        out.result({ event: 'stopped', received });
        if (timedOut && opts.count !== undefined && received < opts.count) {
          throw new ToolkitError(`timed out after ${opts.timeout} s: received ${received} of ${opts.count} messages`, ExitCode.timeout);
        }
      }),
    );
}
