import type { Command } from 'commander';
import { run } from './output.js';
import { DeviceSideOptions } from './options.js';
import { parseJsonObject } from './parsers.js';
import { examples } from './help.js';
import { identityName } from '../clients/identity.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';

export function configureUpdateReported(command: Command): void {
  const deviceSide = new DeviceSideOptions(command, { device: TUTORIAL_NAMES.device, modules: true });
  command
    .option('--reported <json>', 'the reported properties patch (default: {"lastUpdated": <now>})')
    .addHelpText(
      'after',
      examples(
        'update-reported',
        `update-reported -d myFirstDevice -m myFirstModule --reported '{"telemetryInterval":122}'`,
        `update-reported -d myDeviceId --device --reported '{"firmware":"1.2.3"}' --json`,
      ),
    )
    .action((opts: { reported?: string }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const reported =
          opts.reported === undefined ? { lastUpdated: new Date().toISOString() } : parseJsonObject('--reported', opts.reported);
        const connection = await deviceSide.resolve();
        const { updateReported } = await import('../apps/update-reported.js');
        const result = await updateReported(connection, { reported, transport: deviceSide.transport });
        const identity = identityName(connection);
        out.result({ identity, ...result });
        out.heading(`${identity} reported properties updated`);
        out.field('Reported version', String(result.version));
        out.field('Reported', result.reported);
      }),
    );
}
