import type { Command } from 'commander';
import { run, parseJsonOption } from './output.js';
import { deviceSideOptions, protocolOf, resolveDeviceConnection, type DeviceSideOptions } from './device-connection.js';

export function configureUpdateReported(command: Command): void {
  deviceSideOptions(command)
    .option('--reported <json>', 'the reported properties patch (default: {"lastUpdated": <now>})')
    .action((opts: DeviceSideOptions & { reported?: string }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const reported = opts.reported === undefined ? { lastUpdated: new Date().toISOString() } : parseJsonOption('--reported', opts.reported);
        const { updateReported } = await import('../apps/update-reported.js');
        const { connection, identity } = await resolveDeviceConnection(opts);
        const result = await updateReported(connection, { reported, protocol: protocolOf(opts) });
        out.result({ identity, ...result });
        out.heading(`${identity} reported properties updated`);
        out.field('Reported version', String(result.version));
        out.field('Reported', result.reported);
      }),
    );
}
