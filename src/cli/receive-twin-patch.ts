import type { Command } from 'commander';
import { run } from './output.js';
import { countAndTimeoutOptions, DeviceSideOptions } from './options.js';
import { untilInterrupted } from './interrupt.js';
import { examples } from './help.js';
import { identityName } from '../clients/identity.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';

export function configureReceiveTwinPatch(command: Command): void {
  const deviceSide = new DeviceSideOptions(command, { device: TUTORIAL_NAMES.device, modules: true });
  countAndTimeoutOptions(command, 'patches')
    .addHelpText(
      'after',
      examples(
        'receive-twin-patch',
        'receive-twin-patch -d myFirstDevice -m myFirstModule --count 1 --timeout 60',
        'receive-twin-patch -d myDeviceId --device --transport mqtt-ws --json',
      ),
    )
    .action((opts: { count?: number; timeout?: number }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = await deviceSide.resolve();
        const { receiveTwinPatch } = await import('../apps/receive-twin-patch.js');
        const identity = identityName(connection);
        const { received } = await untilInterrupted((signal) =>
          receiveTwinPatch(connection, {
            transport: deviceSide.transport,
            count: opts.count,
            timeoutSeconds: opts.timeout,
            signal,
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
          }),
        );
        out.result({ event: 'stopped', received });
      }),
    );
}
