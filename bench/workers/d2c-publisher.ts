// Devices publishing telemetry at QoS 1 with raw `mqtt` (the SDK's topic, username and SAS
// password), each keeping `window` publishes unacknowledged, until the run's count or time is spent.
import mqtt, { type MqttClient } from 'mqtt';
import { deviceMqttOptions, type MqttTarget } from '../lib/device-auth.js';
import { telemetryBody, telemetryTopic, type D2CLoad, type D2CTally } from '../lib/d2c.js';
import { wallMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

function connect(target: MqttTarget, deviceId: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(deviceMqttOptions(target, deviceId));
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

workerMain<{ target: MqttTarget; deviceIds: string[]; perDevice: number; load: D2CLoad }>(async ({ target, deviceIds, perDevice, load }, ctx) => {
  const clients = await Promise.all(deviceIds.map((id) => connect(target, id)));
  const body = telemetryBody(load.payloadBytes);
  ctx.report({ type: 'ready' });
  await new Promise<void>((resolve) => ctx.on((m) => m.type === 'go' && resolve()));
  const tally: D2CTally = { count: 0, failed: 0, firstAt: wallMs(), lastAt: 0 };
  const deadline = tally.firstAt + load.timeMs;
  const device = async (client: MqttClient, deviceId: string) => {
    let sent = 0;
    const lane = async () => {
      while (sent < perDevice && wallMs() < deadline && !ctx.stopping.aborted) {
        const seq = sent++;
        await new Promise<void>((resolve) =>
          client.publish(telemetryTopic(deviceId, load.tag, seq), body, { qos: 1 }, (err) => {
            if (err) {
              tally.failed!++;
              tally.firstError ??= err.message;
            } else {
              tally.count++;
              tally.lastAt = wallMs();
            }
            resolve();
          }),
        );
        if (!client.connected) return;
      }
    };
    await Promise.all(Array.from({ length: load.window }, lane));
  };
  await Promise.all(clients.map((c, i) => device(c, deviceIds[i])));
  await Promise.all(clients.map((c) => new Promise((resolve) => c.end(false, {}, resolve))));
  return tally;
});
