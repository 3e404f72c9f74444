import type { Command } from 'commander';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { describeIdentity } from '../clients/identity.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import { run } from './output.js';
import { methodTimeoutOptions, serviceConnection, serviceConnectionOption, targetOptions } from './options.js';
import { parseJsonValue } from './parsers.js';
import { examples } from './help.js';

export function configureInvokeMethod(command: Command): void {
  command.argument('<method-name>', 'the direct method to invoke, e.g. rebootDevice');
  targetOptions(command, TUTORIAL_NAMES.managedDevice);
  serviceConnectionOption(command).option(
    '--payload <json>',
    'the method payload: any JSON value (default: null)',
    parseJsonValue('--payload'),
  );
  methodTimeoutOptions(command)
    .addHelpText(
      'after',
      examples(
        `invoke-method rebootDevice -d myDeviceId --payload '{"method_number":"42"}'`,
        'invoke-method getFirmware -d myFirstDevice -m myFirstModule --response-timeout 10',
        'invoke-method ping -d myDeviceId --connect-timeout 30 --json',
      ),
    )
    .action((methodName: string, opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = serviceConnection(opts);
        const { invokeMethod } = await import('../apps/invoke-method.js');
        const target = { deviceId: opts.deviceId as string, moduleId: opts.moduleId as string | undefined };
        const result = await invokeMethod(connection, {
          ...target,
          methodName,
          payload: opts.payload,
          responseTimeout: opts.responseTimeout,
          connectTimeout: opts.connectTimeout,
        });
        out.result(result);
        out.field('Status', String(result.status));
        out.field('Payload', JSON.stringify(result.payload));
        // As invoke-reboot: an answer other than 2xx is the device refusing the call.
        if (result.status < 200 || result.status >= 300) {
          throw new ToolkitError(`${describeIdentity(target)} answered ${methodName} with status ${result.status}`, ExitCode.failure);
        }
      }),
    );
}
