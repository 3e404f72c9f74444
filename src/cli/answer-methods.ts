import type { Command } from 'commander';
import { run, type Output } from './output.js';
import { countAndTimeoutOptions, DeviceSideOptions } from './options.js';
import { parseIntWithin, parseJsonValue, parseNonEmpty } from './parsers.js';
import { untilInterrupted } from './interrupt.js';
import { examples } from './help.js';
import { LOCK_DOOR_METHOD, TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import type { AnswerEvent } from '../apps/answer-methods.js';

function printEvent(out: Output, e: AnswerEvent): void {
  out.result(e);
  switch (e.event) {
    case 'ready':
      return out.line(`Waiting for ${e.methods.join(', ')} on ${e.deviceId}... (press Ctrl-C to exit)`);
    case 'call':
      return out.line(`Method request: ${e.methodName} ${JSON.stringify(e.payload)}; answered ${e.status}`);
    case 'reconnected':
      return out.line(out.color.yellow('Connection lost; reconnected'));
  }
}

const methodName = parseNonEmpty('--method');

export function configureAnswerMethods(command: Command): void {
  const deviceSide = new DeviceSideOptions(command, { device: TUTORIAL_NAMES.managedDevice, modules: false });
  command
    .option(
      '--method <name>',
      `a direct method to answer; repeat it for several (default: ${LOCK_DOOR_METHOD}); other methods get 404`,
      (name: string, names: string[] = []) => [...names, methodName(name)],
    )
    .option('--status <code>', 'the status of every answer', parseIntWithin('--status', 100, 599), 200)
    .option('--payload <json>', 'the payload of every answer: any JSON value (default: none)', parseJsonValue('--payload'));
  countAndTimeoutOptions(command, 'calls')
    .addHelpText(
      'after',
      examples(
        'answer-methods',
        'answer-methods -d myDeviceId --method lockDoor --count 1 --timeout 60',
        `answer-methods --method getFirmware --method ping --payload '{"version":"1.2"}' --json`,
      ),
    )
    .action((opts: { method?: string[]; status: number; payload?: unknown; count?: number; timeout?: number }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = await deviceSide.resolve();
        const { answerMethods } = await import('../apps/answer-methods.js');
        const { calls } = await untilInterrupted((signal) =>
          answerMethods(connection, {
            methods: [...new Set(opts.method ?? [LOCK_DOOR_METHOD])],
            status: opts.status,
            payload: opts.payload,
            transport: deviceSide.transport,
            count: opts.count,
            timeoutSeconds: opts.timeout,
            signal,
            onEvent: (e) => printEvent(out, e),
          }),
        );
        out.result({ event: 'stopped', calls });
        out.line(`Stopped after ${calls} call${calls === 1 ? '' : 's'}.`);
      }),
    );
}
