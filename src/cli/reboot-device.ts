import type { Command } from 'commander';
import { run, type Output } from './output.js';
import { countAndTimeoutOptions, DeviceSideOptions } from './options.js';
import { parseSeconds } from './parsers.js';
import { untilInterrupted } from './interrupt.js';
import { examples } from './help.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import type { RebootEvent } from '../apps/reboot-device.js';

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
  const deviceSide = new DeviceSideOptions(command, { device: TUTORIAL_NAMES.managedDevice, modules: false });
  countAndTimeoutOptions(command, 'reboots', { timeout: false })
    .option('--reboot-seconds <s>', 'how long the simulated reboot takes', parseSeconds('--reboot-seconds'), 20)
    .addHelpText(
      'after',
      examples(
        'reboot-device',
        'reboot-device -d myDeviceId --reboot-seconds 5 --count 1',
        'reboot-device -c "$IOTHUB_DEVICE_CONNECTION_STRING" --json',
      ),
    )
    .action((opts: { rebootSeconds: number; count?: number }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = await deviceSide.resolve();
        const { rebootDevice } = await import('../apps/reboot-device.js');
        const { reboots } = await untilInterrupted((signal) =>
          rebootDevice(connection, {
            transport: deviceSide.transport,
            rebootSeconds: opts.rebootSeconds,
            count: opts.count,
            signal,
            onEvent: (e) => printEvent(out, e),
          }),
        );
        out.result({ event: 'stopped', reboots });
        out.line(`Stopped after ${reboots} reboot${reboots === 1 ? '' : 's'}.`);
      }),
    );
}
