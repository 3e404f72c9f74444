import type { Command } from 'commander';
import { run, parsePositiveInt, parseSeconds } from './output.js';
import { deviceSideOptions, protocolOf, resolveDeviceConnection, type DeviceSideOptions } from './device-connection.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';

export function configureReceiveTwinPatch(command: Command): void {
  deviceSideOptions(command)
    .option('--count <n>', 'exit after this many patches', parsePositiveInt('--count'))
    .option('--timeout <seconds>', 'exit with code 5 when the patches have not arrived in time', parseSeconds('--timeout'))
    .action((opts: DeviceSideOptions & { count?: number; timeout?: number }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        if (opts.count === 0) throw new ToolkitError('--count must be at least 1', ExitCode.usage);
        const { receiveTwinPatch } = await import('../apps/receive-twin-patch.js');
        const { connection, identity } = await resolveDeviceConnection(opts);
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
        try {
          const { received } = await receiveTwinPatch(connection, {
            protocol: protocolOf(opts),
            count: opts.count,
            timeoutSeconds: opts.timeout,
            signal: stop.signal,
            onReady: () => {
              out.result({ event: 'ready', identity });
              out.line(`${identity} is waiting for desired property patches; press Ctrl-C to exit.`);
            },
            onPatch: (patch) => {
              out.result({ event: 'patch', patch });
              out.line();
              out.line(out.color.bold('Twin desired properties patch received:'));
              out.line(JSON.stringify(patch));
            },
            onEvent: (e) => {
              out.result(e);
              out.line(out.color.yellow('Connection lost; reconnected and read the twin again'));
            },
          });
          out.result({ event: 'stopped', received });
        } finally {
          process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
        }
      }),
    );
}
