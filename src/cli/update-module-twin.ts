import type { Command } from 'commander';
import { run, type Output } from './output.js';
import { serviceConnection, serviceConnectionOption } from './options.js';
import { parseJsonObject } from './parsers.js';
import { examples } from './help.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';

function printProperties(out: Output, title: string, properties: unknown): void {
  out.line();
  out.heading(title);
  out.line(JSON.stringify(properties, null, 2));
}

export function configureUpdateModuleTwin(command: Command): void {
  command
    .option('-d, --device-id <id>', 'the device', TUTORIAL_NAMES.device)
    .option('-m, --module-id <id>', 'the module on that device', TUTORIAL_NAMES.module)
    .option('--device', "update the device's own twin instead of the module's")
    .option('--desired <json>', 'the desired properties patch', '{"telemetryInterval":122}');
  serviceConnectionOption(command)
    .addHelpText(
      'after',
      examples(
        'update-module-twin',
        `update-module-twin -d myFirstDevice -m myFirstModule --desired '{"telemetryInterval":60}'`,
        `update-module-twin -d myDeviceId --device --desired '{"firmware":null}' --json`,
      ),
    )
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const desired = parseJsonObject('--desired', opts.desired);
        const connection = serviceConnection(opts);
        const { updateModuleTwin } = await import('../apps/update-module-twin.js');
        const moduleId = opts.device ? undefined : (opts.moduleId as string);
        const { before, after } = await updateModuleTwin(connection, { deviceId: opts.deviceId, moduleId, desired });
        out.result({ deviceId: opts.deviceId, ...(moduleId ? { moduleId } : {}), before, after });
        const what = moduleId ? 'Module' : 'Device';
        printProperties(out, `${what} twin properties before update:`, before.properties);
        printProperties(out, `${what} twin properties after update:`, after.properties);
      }),
    );
}
