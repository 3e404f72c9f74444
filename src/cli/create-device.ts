import type { Command } from 'commander';
import { run, type Output } from './output.js';
import { serviceConnection, serviceConnectionOption } from './options.js';
import { examples } from './help.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import type { IdentityResult, X509DeviceResult } from '../apps/create-identity.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';

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

function printX509Device(out: Output, device: X509DeviceResult): void {
  out.heading(`Device ${out.color.green('created')} with a self-signed X.509 certificate`);
  out.field('Device ID', device.deviceId);
  out.field('Thumbprint', `${device.thumbprint} (SHA-256)`);
  out.field('Certificate', device.certFile);
  out.field('Private key', `${device.keyFile} (keep it secret)`);
  out.line(
    `  Use them with any device command: iothub-tut send-telemetry -d ${device.deviceId} --cert ${device.certFile} --key ${device.keyFile}`,
  );
  out.line(
    out.color.dim(`  (an SDK app: connection string HostName=<hub>;DeviceId=${device.deviceId};x509=true and setOptions({ cert, key }))`),
  );
}

export function configureCreateDevice(command: Command): void {
  command
    .option('-d, --device-id <id>', 'the device to create', TUTORIAL_NAMES.device)
    .option('--x509', 'authenticate with a new self-signed certificate instead of keys (written as <id>-cert.pem and <id>-key.pem)')
    .option('--out-dir <dir>', 'where --x509 writes the certificate and its key', '.');
  serviceConnectionOption(command)
    .addHelpText(
      'after',
      examples('create-device', 'create-device -d myDeviceId --show-secrets', 'create-device -d sensor-7 --x509 --out-dir ./certs'),
    )
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        if (opts.x509) {
          const connection = serviceConnection(opts);
          const { createX509Device } = await import('../apps/create-identity.js');
          const device = await createX509Device(connection, { deviceId: opts.deviceId, outDir: opts.outDir });
          out.result(device);
          printX509Device(out, device);
          return;
        }
        if (cmd.getOptionValueSource('outDir') === 'cli') throw new ToolkitError('--out-dir goes with --x509.', ExitCode.usage);
        const connection = serviceConnection(opts);
        const { createDevice } = await import('../apps/create-identity.js');
        const device = await createDevice(connection, { deviceId: opts.deviceId });
        out.result(device);
        printIdentity(out, 'Device', device);
        secretsHint(out);
      }),
    );
}
