import { InvalidArgumentError, type Command } from 'commander';
import { run } from './output.js';
import { serviceConnection, serviceConnectionOption } from './options.js';
import { parsePositiveInt, parseSeconds } from './parsers.js';
import { examples } from './help.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';

const ACKS = ['none', 'positive', 'negative', 'full'];

export function configureSendC2d(command: Command): void {
  serviceConnectionOption(command)
    .option('-d, --device-id <id>', 'the device to send to', TUTORIAL_NAMES.device)
    .option('--message <text>', "the message's body", 'Cloud to device message.')
    .option('--count <n>', 'send this many messages', parsePositiveInt('--count'), 1)
    .option('--ack <kind>', `the delivery feedback to ask for: ${ACKS.join(', ')}`, parseAck, 'full')
    .option('--ttl <s>', "seconds until the message expires (IoT Hub's default: 3600, at most 172800)", parseSeconds('--ttl'))
    .option(
      '--properties <k=v...>',
      'application properties, e.g. --properties colour=blue level=3',
      parseProperty,
      {} as Record<string, string>,
    )
    .option(
      '--wait-feedback <s>',
      'wait this many seconds for the delivery feedback of each message and print it (exit 5 if some does not come)',
      parseSeconds('--wait-feedback'),
    )
    .option('--websocket', 'AMQP over WebSockets (port 443 on Azure) instead of AMQP (5671)')
    .addHelpText(
      'after',
      examples(
        'send-c2d',
        'send-c2d -d myFirstDevice --message "Turn the fan on" --properties level=3 --wait-feedback 30',
        'send-c2d -d myFirstDevice --count 5 --ack none --ttl 60 --json',
      ),
    )
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = serviceConnection(opts);
        const { sendC2d } = await import('../apps/send-c2d.js');
        const result = await sendC2d(connection, {
          deviceId: opts.deviceId,
          message: opts.message,
          count: opts.count,
          ack: opts.ack,
          ttlSeconds: opts.ttl,
          properties: opts.properties,
          waitFeedbackSeconds: opts.waitFeedback,
          protocol: opts.websocket ? 'amqpWs' : 'amqp',
          onSent: (sent) => {
            out.result({ event: 'sent', deviceId: opts.deviceId, ...sent });
            out.line(`Sent to ${opts.deviceId}: ${sent.data} (message id ${sent.messageId})`);
          },
          onFeedback: (record) => {
            out.result({ event: 'feedback', ...record });
            out.line(`Feedback for ${record.originalMessageId}: ${out.color.bold(record.statusCode)} (${record.description})`);
          },
        });
        out.result({ event: 'done', sent: result.sent, feedback: result.feedback.length });
      }),
    );
}

function parseAck(text: string): string {
  if (!ACKS.includes(text)) throw new InvalidArgumentError(`--ack must be one of ${ACKS.join(', ')}.`);
  return text;
}

function parseProperty(text: string, previous: Record<string, string>): Record<string, string> {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`--properties takes key=value pairs, not '${text}'.`);
  return { ...previous, [text.slice(0, eq)]: text.slice(eq + 1) };
}
