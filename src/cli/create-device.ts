import type { Command } from 'commander';
import { resolveConnection } from '../clients/config.js';
import { run, type Output } from './output.js';
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
  command
    .option('-d, --device-id <id>', 'the device to create', 'myFirstDevice')
    .option('-c, --connection-string <cs>', 'hub connection string (default: $IOTHUB_CONNECTION_STRING, .env, or the local hub)')
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const { createDevice } = await import('../apps/create-identity.js');
        const connection = resolveConnection('service', opts.connectionString, (p) => p.serviceConnectionString);
        const device = await createDevice(connection, { deviceId: opts.deviceId });
        out.result(device);
        printIdentity(out, 'Device', device);
        secretsHint(out);
      }),
    );
}
