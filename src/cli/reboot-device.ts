import type { Command } from 'commander';
import { resolveDeviceConnection } from './device-connection.js';
import { run, parsePositiveInt, parseSeconds, type Output } from './output.js';
import type { RebootEvent } from '../apps/reboot-device.js';

export const TUTORIAL_DEVICE = 'myDeviceId';

function printEvent(out: Output, e: RebootEvent): void {
  out.result(e);
  switch (e.event) {
    case 'ready':
      return out.line(`Waiting for the rebootDevice method on ${e.deviceId}... (press Ctrl-C to exit)`);
    case 'request':
      return out.line(`Method request: ${e.methodName} ${JSON.stringify(e.payload ?? null)}`);
    case 'rebooting':
      return out.line(`Rebooting device (${e.seconds} s)`);
    case 'rebooted':
      return out.line('Device rebooted');
    case 'reported':
      return out.line(`Reported rebootTime ${e.rebootTime}`);
    case 'reportFailed':
      return out.line(out.color.yellow(`Could not report rebootTime: ${e.error}`));
    case 'reconnected':
      return out.line(out.color.yellow('Connection lost; reconnected'));
  }
}

export function configureRebootDevice(command: Command): void {
  command
    .option('-d, --device-id <id>', 'the device to run as (its key is looked up when no device connection string is given)', TUTORIAL_DEVICE)
    .option('-c, --connection-string <cs>', 'device connection string (default: $IOTHUB_DEVICE_CONNECTION_STRING, .env, or the device looked up on the hub)')
    .option('--reboot-seconds <s>', 'how long the simulated reboot takes', parseSeconds('--reboot-seconds'), 20)
    .option('--count <n>', 'exit after this many reboots (default: run until Ctrl-C)', parsePositiveInt('--count'))
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const { rebootDevice } = await import('../apps/reboot-device.js');
        const { connection } = await resolveDeviceConnection({ deviceId: opts.deviceId, moduleId: '', device: true, connectionString: opts.connectionString });
        const stop = new AbortController();
        const abort = () => stop.abort();
        process.once('SIGINT', abort).once('SIGTERM', abort);
        try {
          const { reboots } = await rebootDevice(connection, {
            rebootSeconds: opts.rebootSeconds,
            count: opts.count || undefined,
            signal: stop.signal,
            onEvent: (e) => printEvent(out, e),
          });
          out.result({ event: 'stopped', reboots });
          out.line(`Stopped after ${reboots} reboot${reboots === 1 ? '' : 's'}.`);
        } finally {
          process.off('SIGINT', abort).off('SIGTERM', abort);
        }
      }),
    );
}
