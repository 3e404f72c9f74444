import type { Command } from 'commander';
import { resolveConnection } from '../clients/config.js';
import { resolveDeviceConnection } from './device-connection.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import type { HubConnection } from '../clients/service-clients.js';
import type { Confirmation, TelemetrySummary } from '../apps/send-telemetry.js';
import { run, parsePositiveInt, parseSeconds, type Output } from './output.js';

export const TUTORIAL_DEVICE = 'myFirstDevice';
const SIMULATED_DEVICE = 'simDevice';

/** simDevice-1..K, registered on the hub when missing (an existing one keeps its keys). */
async function simulatedDevices(k: number): Promise<HubConnection[]> {
  const service = resolveConnection('service', undefined, (p) => p.serviceConnectionString);
  const { createDevice } = await import('../apps/create-identity.js');
  const connections: HubConnection[] = [];
  for (let i = 1; i <= k; i++) {
    const device = await createDevice(service, { deviceId: `${SIMULATED_DEVICE}-${i}` });
    connections.push({ connectionString: device.connectionString, transport: service.transport });
  }
  return connections;
}

function printConfirmation(out: Output, c: Confirmation, manyDevices: boolean): void {
  out.result({ event: 'confirmed', ...c });
  const { padding, ...body } = c.body;
  const who = manyDevices ? `${c.deviceId}: ` : '';
  const padded = padding ? out.color.dim(` (+${padding.length} bytes of padding)`) : '';
  out.line(`${who}Message ${c.messageId.replace('message_', '')} sent: ${JSON.stringify(body)}${padded} ${out.color.dim(`(${c.confirmed} confirmed)`)}`);
}

/** A progress line rewritten in place on a terminal (stderr, so stdout stays the record). */
function progressLine(out: Output) {
  const live = !out.json && process.stderr.isTTY === true;
  let last = 0;
  return {
    show(s: TelemetrySummary) {
      if (!live || Date.now() - last < 200) return;
      last = Date.now();
      process.stderr.write(`\r\x1b[K${out.color.dim(`${s.sent} sent, ${s.confirmed} confirmed, ${s.failed} failed, ${s.msgPerSec} msg/s`)}`);
    },
    clear() {
      if (live && last) process.stderr.write('\r\x1b[K');
    },
  };
}

export function configureSendTelemetry(command: Command): void {
  command
    .option('-d, --device-id <id>', 'the device to send as (its key is looked up when no device connection string is given)', TUTORIAL_DEVICE)
    .option('-c, --connection-string <cs>', 'device connection string (default: $IOTHUB_DEVICE_CONNECTION_STRING, .env, or the device looked up on the hub)')
    .option('--count <n>', 'messages per device; 0 sends until Ctrl-C, like the tutorial', parsePositiveInt('--count'), 10)
    .option('--interval <s>', 'seconds between one device\'s messages', parseSeconds('--interval'), 1)
    .option('--devices <k>', `simulate K devices, ${SIMULATED_DEVICE}-1..K, each on its own connection (registered on the hub when missing)`, parsePositiveInt('--devices'), 1)
    .option('--message-size <bytes>', 'pad each body to about this many bytes (IoT Hub accepts up to 256 KB)', parsePositiveInt('--message-size'))
    .action((opts, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        if (opts.devices < 1) throw new ToolkitError('--devices must be at least 1', ExitCode.usage);
        if (opts.devices > 1 && (opts.connectionString || process.env.IOTHUB_DEVICE_CONNECTION_STRING)) {
          throw new ToolkitError(`--devices ${opts.devices} registers its own ${SIMULATED_DEVICE}-N devices: drop the device connection string.`, ExitCode.usage);
        }
        const { sendTelemetry } = await import('../apps/send-telemetry.js');
        const connections = opts.devices > 1 ? await simulatedDevices(opts.devices) : [(await resolveDeviceConnection({ deviceId: opts.deviceId, moduleId: '', device: true, connectionString: opts.connectionString })).connection];
        const stop = new AbortController();
        const abort = () => stop.abort();
        process.once('SIGINT', abort).once('SIGTERM', abort);
        const progress = progressLine(out);
        out.line(`Sending ${opts.count ? `${opts.count} message${opts.count === 1 ? '' : 's'}` : 'messages'} every ${opts.interval} s` +
          `${opts.devices > 1 ? ` from each of ${opts.devices} devices` : ''}, press Ctrl-C to stop`);
        try {
          const summary = await sendTelemetry(connections, {
            count: opts.count || undefined,
            intervalMs: opts.interval * 1000,
            messageBytes: opts.messageSize,
            signal: stop.signal,
            onConfirm: (c) => {
              progress.clear();
              printConfirmation(out, c, opts.devices > 1);
            },
            onFailure: (m, error) => {
              progress.clear();
              out.result({ event: 'failed', deviceId: m.deviceId, messageId: m.messageId, error });
              if (!out.json) process.stderr.write(`${out.color.yellow(`${m.deviceId} ${m.messageId} failed:`)} ${error}\n`);
            },
            onProgress: (s) => progress.show(s),
            onReconnect: (deviceId) => {
              progress.clear();
              out.result({ event: 'reconnected', deviceId });
              out.line(out.color.yellow(`${deviceId}: connection lost; reconnected`));
            },
          });
          progress.clear();
          out.result({ event: 'summary', ...summary });
          out.line(`${summary.sent} sent, ${summary.confirmed} confirmed, ${summary.failed} failed in ${summary.seconds.toFixed(1)} s (${summary.msgPerSec} msg/s)`);
          if (summary.failed > 0) throw new ToolkitError(`${summary.failed} of ${summary.sent} messages were not confirmed by the hub`, ExitCode.failure);
        } finally {
          process.off('SIGINT', abort).off('SIGTERM', abort);
        }
      }),
    );
}
