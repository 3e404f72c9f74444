// Devices publishing telemetry at QoS 1 over TLS (the SDK's topic, username and SAS password), with
// hand-encoded packets (lib/mqtt-wire.ts), each keeping `window` publishes unacknowledged, until
// the run's count or time is spent.
import type { TLSSocket } from 'node:tls';
import { deviceMqttOptions, type MqttTarget } from '../lib/device-auth.js';
import { telemetryBody, telemetryTopic, type D2CLoad, type D2CTally } from '../lib/d2c.js';
import { connectWire, publishPacket } from '../lib/mqtt-wire.js';
import { wallMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ target: MqttTarget; deviceIds: string[]; perDevice: number; load: D2CLoad }>(
  async ({ target, deviceIds, perDevice, load }, ctx) => {
    const body = telemetryBody(load.payloadBytes);
    const tally: D2CTally = { count: 0, failed: 0, firstAt: 0, lastAt: 0 };
    let deadline = Infinity;
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let running = deviceIds.length;

    const devices = deviceIds.map((deviceId) => {
      const device = { deviceId, socket: undefined as TLSSocket | undefined, sent: 0, inFlight: 0, done: false };
      const send = () => {
        const seq = device.sent++;
        device.inFlight++;
        device.socket!.write(publishPacket(telemetryTopic(deviceId, load.tag, seq), (seq % 65535) + 1, body));
      };
      const onPuback = () => {
        device.inFlight--;
        tally.count++;
        tally.lastAt = wallMs();
        if (device.sent < perDevice && tally.lastAt < deadline && !ctx.stopping.aborted) send();
        else if (device.inFlight === 0 && !device.done) {
          device.done = true;
          if (--running === 0) finish();
        }
      };
      return { device, send, onPuback };
    });
    await Promise.all(
      devices.map(async (d) => (d.device.socket = await connectWire(deviceMqttOptions(target, d.device.deviceId), d.onPuback))),
    );
    ctx.report({ type: 'ready' });
    await new Promise<void>((resolve) => ctx.on((m) => m.type === 'go' && resolve()));
    tally.firstAt = wallMs();
    deadline = tally.firstAt + load.timeMs;
    for (const d of devices) {
      d.device.socket!.on('close', () => {
        if (d.device.done) return;
        tally.failed! += d.device.inFlight;
        tally.firstError ??= `${d.device.deviceId}: connection closed`;
        d.device.done = true;
        if (--running === 0) finish();
      });
      for (let i = 0; i < Math.min(load.window, perDevice); i++) d.send();
    }
    await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, load.timeMs + 10_000))]);
    for (const d of devices) d.device.socket!.end();
    return tally;
  },
);
