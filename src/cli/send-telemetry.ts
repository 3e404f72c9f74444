import type { Command } from 'commander';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { identityConnectionWithKey, type DeviceConnection } from '../clients/connection-string.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import type { Confirmation, TelemetrySummary } from '../apps/send-telemetry.js';
import { cliIo } from './io.js';
import { run, type Output } from './output.js';
import { DeviceSideOptions, serviceConnection } from './options.js';
import { parseNonNegativeInt, parsePositiveInt, parseSeconds } from './parsers.js';
import { untilInterrupted } from './interrupt.js';
import { examples } from './help.js';

const SIMULATED = TUTORIAL_NAMES.simulatedDevicePrefix;

/** simDevice-1..K, registered on the hub when missing (an existing one keeps its keys). */
async function simulatedDevices(k: number): Promise<DeviceConnection[]> {
  const service = serviceConnection({});
  const { createDevice } = await import('../apps/create-identity.js');
  const connections: DeviceConnection[] = [];
  for (let i = 1; i <= k; i++) {
    const device = await createDevice(service, { deviceId: `${SIMULATED}-${i}` });
    connections.push(identityConnectionWithKey(service, device, device.primaryKey));
  }
  return connections;
}

function printConfirmation(out: Output, c: Confirmation, manyDevices: boolean): void {
  out.result({ event: 'confirmed', ...c });
  const { padding, ...body } = c.body;
  const who = manyDevices ? `${c.deviceId}: ` : '';
  const padded = padding ? out.color.dim(` (+${padding.length} bytes of padding)`) : '';
  out.line(
    `${who}Message ${c.messageId.replace('message_', '')} sent: ${JSON.stringify(body)}${padded} ${out.color.dim(`(${c.confirmed} confirmed)`)}`,
  );
}

/** A progress line rewritten in place on a terminal (stderr, so stdout stays the record). */
function progressLine(out: Output) {
  const { stderr } = cliIo();
  const live = !out.json && stderr.isTTY === true;
  let last = 0;
  return {
    show(s: TelemetrySummary) {
      if (!live || Date.now() - last < 200) return;
      last = Date.now();
      stderr.write(`\r\x1b[K${out.color.dim(`${s.sent} sent, ${s.confirmed} confirmed, ${s.failed} failed, ${s.msgPerSec} msg/s`)}`);
    },
    clear() {
      if (live && last) stderr.write('\r\x1b[K');
    },
  };
}

export function configureSendTelemetry(command: Command): void {
  const deviceSide = new DeviceSideOptions(command, { device: TUTORIAL_NAMES.device, modules: false });
  command
    .option('--count <n>', 'messages per device; 0 sends until Ctrl-C, like the tutorial', parseNonNegativeInt('--count'), 10)
    .option('--interval <s>', "seconds between one device's messages", parseSeconds('--interval'), 1)
    .option(
      '--devices <k>',
      `simulate K devices, ${SIMULATED}-1..K, each on its own connection (registered on the hub when missing)`,
      parsePositiveInt('--devices'),
      1,
    )
    .option(
      '--message-size <bytes>',
      'pad each body to about this many bytes (IoT Hub accepts up to 256 KB)',
      parsePositiveInt('--message-size'),
    )
    .addHelpText(
      'after',
      examples(
        'send-telemetry -d myFirstDevice --count 10 --interval 1',
        'send-telemetry --count 0 --transport http',
        'send-telemetry --devices 3 --count 100 --interval 0.1 --json',
      ),
    )
    .action((opts: { count: number; interval: number; devices: number; messageSize?: number }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        if (opts.devices > 1 && (deviceSide.typed('deviceId') || deviceSide.given())) {
          throw new ToolkitError(
            `--devices ${opts.devices} sends as its own ${SIMULATED}-N devices: drop --device-id and the device connection string.`,
            ExitCode.usage,
          );
        }
        const connections = opts.devices > 1 ? await simulatedDevices(opts.devices) : [await deviceSide.resolve()];
        const { sendTelemetry } = await import('../apps/send-telemetry.js');
        const progress = progressLine(out);
        out.line(
          `Sending ${opts.count ? `${opts.count} message${opts.count === 1 ? '' : 's'}` : 'messages'} every ${opts.interval} s` +
            `${opts.devices > 1 ? ` from each of ${opts.devices} devices` : ''}, press Ctrl-C to stop`,
        );
        const summary = await untilInterrupted((signal) =>
          sendTelemetry(connections, {
            transport: deviceSide.transport,
            count: opts.count || undefined,
            intervalMs: opts.interval * 1000,
            messageBytes: opts.messageSize,
            signal,
            onConfirm: (c) => {
              progress.clear();
              printConfirmation(out, c, opts.devices > 1);
            },
            onFailure: (m, error) => {
              progress.clear();
              out.result({ event: 'failed', deviceId: m.deviceId, messageId: m.messageId, error });
              if (!out.json) cliIo().stderr.write(`${out.color.yellow(`${m.deviceId} ${m.messageId} failed:`)} ${error}\n`);
            },
            onProgress: (s) => progress.show(s),
            onReconnect: (deviceId) => {
              progress.clear();
              out.result({ event: 'reconnected', deviceId });
              out.line(out.color.yellow(`${deviceId}: connection lost; reconnected`));
            },
          }),
        );
        progress.clear();
        out.result({ event: 'summary', ...summary });
        out.line(
          `${summary.sent} sent, ${summary.confirmed} confirmed, ${summary.failed} failed in ${summary.seconds.toFixed(1)} s (${summary.msgPerSec} msg/s)`,
        );
        if (summary.failed > 0)
          throw new ToolkitError(`${summary.failed} of ${summary.sent} messages were not confirmed by the hub`, ExitCode.failure);
      }),
    );
}
