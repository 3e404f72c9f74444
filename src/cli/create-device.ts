import type { Command } from 'commander';
import { run, type Output } from './output.js';
import { serviceConnection, serviceConnectionOption } from './options.js';
import { examples } from './help.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import type { IdentityResult } from '../apps/create-identity.js';

export function printIdentity(out: Output, title: string, identity: IdentityResult): void {
  out.heading(`${title} ${identity.created ? out.color.green('created') : out.color.yellow('already registered')}`);
  out.field(identity.moduleId ? 'Module ID' : 'Device ID', identity.moduleId ?? identity.deviceId);
  if (identity.moduleId) out.field('on device', identity.deviceId);
  out.field('Primary key', out.secret(identity.primaryKey));
  if (out.options.showSecrets) out.field('Connection string', identity.connectionString);
}

export function secretsHint(out: Output): void {
  if (!out.options.showSecrets) out.line(out.color.dim('  (keys are masked; add --show-secrets to see them and the connection string)'));
}

export function configureCreateDevice(command: Command): void {
  command.option('-d, --device-id <id>', 'the device to create', TUTORIAL_NAMES.device);
  serviceConnectionOption(command)
    .addHelpText(
      'after',
      examples(
        'create-device',
        'create-device -d myDeviceId --show-secrets',
        'create-device -d sensor-7 -c "$IOTHUB_CONNECTION_STRING" --json',
      ),
    )
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const { createDevice } = await import('../apps/create-identity.js');
        const device = await createDevice(serviceConnection(opts), { deviceId: opts.deviceId });
        out.result(device);
        printIdentity(out, 'Device', device);
        secretsHint(out);
      }),
    );
}
