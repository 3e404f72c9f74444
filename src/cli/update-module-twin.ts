import type { Command } from 'commander';
import { resolveConnection } from '../clients/config.js';
import { run, parseJsonOption, type Output } from './output.js';

function printProperties(out: Output, title: string, properties: unknown): void {
  out.line();
  out.heading(title);
  out.line(JSON.stringify(properties, null, 2));
}

export function configureUpdateModuleTwin(command: Command): void {
  command
    .option('-d, --device-id <id>', 'the device', 'myFirstDevice')
    .option('-m, --module-id <id>', 'the module on that device', 'myFirstModule')
    .option('--device', "update the device's own twin instead of the module's")
    .option('--desired <json>', 'the desired properties patch', '{"telemetryInterval":122}')
    .option('-c, --connection-string <cs>', 'hub connection string (default: $IOTHUB_CONNECTION_STRING, .env, or the local hub)')
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const desired = parseJsonOption('--desired', opts.desired);
        const { updateModuleTwin } = await import('../apps/update-module-twin.js');
        const connection = resolveConnection('service', opts.connectionString, (p) => p.serviceConnectionString);
        const moduleId = opts.device ? undefined : (opts.moduleId as string);
        const { before, after } = await updateModuleTwin(connection, { deviceId: opts.deviceId, moduleId, desired });
        out.result({ deviceId: opts.deviceId, ...(moduleId ? { moduleId } : {}), before, after });
        const what = moduleId ? 'Module' : 'Device';
        printProperties(out, `${what} twin properties before update:`, before.properties);
        printProperties(out, `${what} twin properties after update:`, after.properties);
      }),
    );
}
