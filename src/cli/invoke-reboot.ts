import type { Command } from 'commander';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { identityName } from '../clients/identity.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import { run } from './output.js';
import { methodTimeoutOptions, serviceConnection, serviceConnectionOption, targetOptions } from './options.js';
import { parseJsonValue, parseSeconds } from './parsers.js';
import { untilInterrupted } from './interrupt.js';
import { examples } from './help.js';

export function configureInvokeReboot(command: Command): void {
  targetOptions(command, TUTORIAL_NAMES.managedDevice);
  serviceConnectionOption(command).option(
    '--payload <json>',
    'the method payload (default: the tutorial\'s {"method_number":"42"})',
    parseJsonValue('--payload'),
  );
  methodTimeoutOptions(command)
    .option('--wait <s>', 'seconds to wait for the device to report its new rebootTime (0: do not wait)', parseSeconds('--wait'), 60)
    .addHelpText(
      'after',
      examples(
        'invoke-reboot',
        'invoke-reboot -d myDeviceId --wait 60 --response-timeout 30',
        'invoke-reboot -d myDeviceId --connect-timeout 60 --wait 0 --json',
      ),
    )
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = serviceConnection(opts);
        const { invokeReboot } = await import('../apps/invoke-reboot.js');
        const target = { deviceId: opts.deviceId as string, moduleId: opts.moduleId as string | undefined };
        out.line(`Invoking rebootDevice on ${identityName(target)}...`);
        const result = await untilInterrupted((signal) =>
          invokeReboot(connection, {
            ...target,
            payload: opts.payload,
            responseTimeout: opts.responseTimeout,
            connectTimeout: opts.connectTimeout,
            waitSeconds: opts.wait,
            signal,
            onEvent: (e) => {
              out.result(e);
              if (e.event === 'response') {
                out.line(`Device answered ${e.status}: ${JSON.stringify(e.payload)}`);
              } else {
                out.line('Waiting for the device to report its last reboot time...');
              }
            },
          }),
        );
        if (result.status < 200 || result.status >= 300)
          throw new ToolkitError(`the device did not accept the reboot (status ${result.status})`, ExitCode.failure);
        if (result.rebootTime) {
          out.result({ event: 'rebootTime', rebootTime: result.rebootTime });
          out.line(`Last reboot time: ${result.rebootTime}`);
        }
      }),
    );
}
