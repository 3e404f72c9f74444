import type { Command } from 'commander';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import { run } from './output.js';
import { serviceConnection, serviceConnectionOption, targetOptions } from './options.js';
import { examples } from './help.js';

const SHOW_EXAMPLES = ['twin show -d myFirstDevice', 'twin show -d myFirstDevice -m myFirstModule', 'twin show -d myDeviceId --json'];

export function configureTwin(twin: Command): void {
  twin.addHelpText('after', examples(...SHOW_EXAMPLES));
  const show = twin
    .command('show')
    .description(
      "show a device's or module's twin as the service sees it: tags, desired and reported properties, versions, etag (az iot hub device-twin show)",
    );
  targetOptions(show, TUTORIAL_NAMES.device);
  serviceConnectionOption(show)
    .addHelpText('after', examples(...SHOW_EXAMPLES))
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = serviceConnection(opts);
        const { showTwin, twinName } = await import('../apps/show-twin.js');
        const identity = { deviceId: opts.deviceId as string, moduleId: opts.moduleId as string | undefined };
        const twinDocument = await showTwin(connection, identity);
        out.result(twinDocument);
        out.heading(`${twinName(identity).replace(/^./, (c) => c.toUpperCase())}:`);
        out.line(JSON.stringify(twinDocument, null, 2));
      }),
    );
}
