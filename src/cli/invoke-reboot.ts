import type { Command } from 'commander';
import { resolveConnection } from '../clients/config.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { run, parseJsonValue, parseSeconds } from './output.js';
import { TUTORIAL_DEVICE } from './reboot-device.js';

export function configureInvokeReboot(command: Command): void {
  command
    .option('-d, --device-id <id>', 'the device to reboot', TUTORIAL_DEVICE)
    .option('-m, --module-id <id>', 'a module on the device, to call the method on the module instead')
    .option('-c, --connection-string <cs>', 'hub connection string (default: $IOTHUB_CONNECTION_STRING, .env, or the local hub)')
    .option('--payload <json>', 'the method payload', parseJsonValue('--payload'))
    .option('--response-timeout <s>', 'seconds IoT Hub waits for the device to answer (5 to 300)', parseSeconds('--response-timeout'), 30)
    .option('--connect-timeout <s>', 'seconds IoT Hub waits for an offline device to connect (0 to 300)', parseSeconds('--connect-timeout'), 0)
    .option('--wait <s>', 'seconds to wait for the device to report its new rebootTime (0: do not wait)', parseSeconds('--wait'), 60)
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const { invokeReboot } = await import('../apps/invoke-reboot.js');
        const connection = resolveConnection('service', opts.connectionString, (p) => p.serviceConnectionString);
        out.line(`Invoking rebootDevice on ${opts.moduleId ? `${opts.deviceId}/${opts.moduleId}` : opts.deviceId}...`);
        const stop = new AbortController();
        const abort = () => stop.abort();
        process.once('SIGINT', abort).once('SIGTERM', abort);
        try {
          const result = await invokeReboot(connection, {
            deviceId: opts.deviceId,
            moduleId: opts.moduleId,
            payload: opts.payload,
            responseTimeout: opts.responseTimeout,
            connectTimeout: opts.connectTimeout,
            waitSeconds: opts.wait,
            signal: stop.signal,
            onEvent: (e) => {
              out.result(e);
              if (e.event === 'response') {
                out.line(`Device answered ${e.status}: ${JSON.stringify(e.payload)}`);
              } else {
                out.line('Waiting for the device to report its last reboot time...');
              }
            },
          });
          if (result.status < 200 || result.status >= 300) throw new ToolkitError(`the device did not accept the reboot (status ${result.status})`, ExitCode.failure);
          if (result.rebootTime) {
            out.result({ event: 'rebootTime', rebootTime: result.rebootTime });
            out.line(`Last reboot time: ${result.rebootTime}`);
          }
        } finally {
          process.off('SIGINT', abort).off('SIGTERM', abort);
        }
      }),
    );
}
