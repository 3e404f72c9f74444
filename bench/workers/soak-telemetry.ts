// The soak's D2C load: devices publishing QoS 1 telemetry (hand-encoded, lib/mqtt-wire.ts) at a
// steady total rate, each with a few publishes unacknowledged at most, for the soak's duration.
// A connection the hub closes is opened again a second later (counted).
import type { TLSSocket } from 'node:tls';
import { deviceMqttOptions, type MqttTarget } from '../lib/device-auth.js';
import { telemetryBody, telemetryTopic } from '../lib/d2c.js';
import { connectWire, publishPacket } from '../lib/mqtt-wire.js';
import { workerMain } from '../lib/worker-main.js';

export interface SoakTelemetryTally {
  acked: number;
  /** Sends skipped because the device still had its window unacknowledged. */
  behind: number;
  reconnects: number;
  firstError?: string;
}

const WINDOW = 8;
const TICK_MS = 50;

workerMain<{ target: MqttTarget; deviceIds: string[]; perSecond: number; payloadBytes: number; tag: string; durationMs: number }>(
  async (config, ctx) => {
    const body = telemetryBody(config.payloadBytes);
    const tally: SoakTelemetryTally = { acked: 0, behind: 0, reconnects: 0 };
    const devices = config.deviceIds.map((deviceId) => ({ deviceId, socket: undefined as TLSSocket | undefined, seq: 0, inFlight: 0 }));
    const open = async (device: (typeof devices)[number]): Promise<void> => {
      device.inFlight = 0;
      device.socket = await connectWire(deviceMqttOptions(config.target, device.deviceId), () => {
        device.inFlight--;
        tally.acked++;
      });
      device.socket.on('close', () => {
        device.socket = undefined;
        if (ctx.stopping.aborted) return;
        tally.reconnects++;
        tally.firstError ??= `${device.deviceId}: connection closed`;
        setTimeout(() => open(device).catch((err) => (tally.firstError ??= String(err))), 1000);
      });
    };
    await Promise.all(devices.map(open));
    ctx.report({ type: 'ready' });
    const start = Date.now();
    let sent = 0;
    let next = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = Date.now() - start;
        if (elapsed >= config.durationMs || ctx.stopping.aborted) {
          clearInterval(timer);
          return resolve();
        }
        // Catch up to the rate, round robin over the devices.
        for (const due = Math.floor((elapsed / 1000) * config.perSecond); sent < due; sent++) {
          const device = devices[next++ % devices.length]!;
          if (!device.socket || device.inFlight >= WINDOW) {
            tally.behind++;
            continue;
          }
          const seq = device.seq++;
          device.inFlight++;
          device.socket.write(publishPacket(telemetryTopic(device.deviceId, config.tag, seq), (seq % 65535) + 1, body));
        }
      }, TICK_MS);
    });
    await new Promise((r) => setTimeout(r, 2000)); // the last acknowledgements
    for (const d of devices) d.socket?.end();
    return tally;
  },
);
