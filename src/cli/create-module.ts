import type { Command } from 'commander';
import { run } from './output.js';
import { serviceConnection, serviceConnectionOption } from './options.js';
import { examples } from './help.js';
import { printIdentity, secretsHint } from './create-device.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';

export function configureCreateModule(command: Command): void {
  command
    .option('-d, --device-id <id>', 'the device that hosts the module', TUTORIAL_NAMES.device)
    .option('-m, --module-id <id>', 'the module to create', TUTORIAL_NAMES.module);
  serviceConnectionOption(command)
    .addHelpText(
      'after',
      examples(
        'create-module',
        'create-module -d myFirstDevice -m myFirstModule --show-secrets',
        'create-module -d gateway-1 -m filter --json',
      ),
    )
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = serviceConnection(opts);
        const { createModule } = await import('../apps/create-identity.js');
        const result = await createModule(connection, { deviceId: opts.deviceId, moduleId: opts.moduleId });
        out.result(result);
        printIdentity(out, 'Device', result.device);
        printIdentity(out, 'Module', result.module);
        secretsHint(out);
      }),
    );
}
