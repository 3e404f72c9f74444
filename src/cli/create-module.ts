import type { Command } from 'commander';
import { resolveConnection } from '../clients/config.js';
import { run } from './output.js';
import { printIdentity, secretsHint } from './create-device.js';

export function configureCreateModule(command: Command): void {
  command
    .option('-d, --device-id <id>', 'the device that hosts the module', 'myFirstDevice')
    .option('-m, --module-id <id>', 'the module to create', 'myFirstModule')
    .option('-c, --connection-string <cs>', 'hub connection string (default: $IOTHUB_CONNECTION_STRING, .env, or the local hub)')
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const { createModule } = await import('../apps/create-identity.js');
        const connection = resolveConnection('service', opts.connectionString, (p) => p.serviceConnectionString);
        const result = await createModule(connection, { deviceId: opts.deviceId, moduleId: opts.moduleId });
        out.result(result);
        printIdentity(out, 'Device', result.device);
        printIdentity(out, 'Module', result.module);
        secretsHint(out);
      }),
    );
}
