import type { Command } from 'commander';
import { run } from './output.js';
import { countAndTimeoutOptions, DeviceSideOptions } from './options.js';
import { untilInterrupted } from './interrupt.js';
import { examples } from './help.js';
import { identityName } from '../clients/identity.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';

export function configureReceiveC2d(command: Command): void {
  const deviceSide = new DeviceSideOptions(command, { device: TUTORIAL_NAMES.device, modules: false });
  countAndTimeoutOptions(command, 'messages')
    .addHelpText(
      'after',
      examples(
        'receive-c2d',
        'receive-c2d -d myFirstDevice --count 1 --timeout 60',
        'receive-c2d -d myFirstDevice --transport http --json',
      ),
    )
    .action((opts: { count?: number; timeout?: number }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = await deviceSide.resolve();
        const { receiveC2d } = await import('../apps/receive-c2d.js');
        const identity = identityName(connection);
        const { received } = await untilInterrupted((signal) =>
          receiveC2d(connection, {
            transport: deviceSide.transport,
            count: opts.count,
            timeoutSeconds: opts.timeout,
            signal,
            onReady: () => {
              out.result({ event: 'ready', identity });
              out.line(`${identity} is waiting for cloud-to-device messages; press Ctrl-C to exit.`);
            },
            onMessage: (message) => {
              out.result({ event: 'message', ...message });
              out.line();
              out.line(out.color.bold('Received message:'));
              out.line(`Data: ${message.data}`);
              if (message.messageId) out.line(`Message id: ${message.messageId}`);
              for (const [key, value] of Object.entries(message.properties)) out.line(`Property: ${key} = ${value}`);
            },
          }),
        );
        out.result({ event: 'stopped', received });
      }),
    );
}
