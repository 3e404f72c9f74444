// The soak's connects and disconnects: devices that connect (full TLS handshake, SAS, CONNACK) and
// close again at once, at a steady rate, for the duration.
import { deviceMqttOptions, type MqttTarget } from '../lib/device-auth.js';
import { connectWire } from '../lib/mqtt-wire.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ target: MqttTarget; deviceIds: string[]; perSecond: number; durationMs: number }>(async (config, ctx) => {
  const tally = { connects: 0, failures: 0, firstError: undefined as string | undefined };
  const deadline = Date.now() + config.durationMs;
  for (let i = 0; Date.now() < deadline && !ctx.stopping.aborted; i++) {
    const due = Date.now() + 1000 / config.perSecond;
    try {
      const socket = await connectWire(deviceMqttOptions(config.target, config.deviceIds[i % config.deviceIds.length]!), () => {});
      socket.end(Buffer.from([0xe0, 0])); // DISCONNECT
      tally.connects++;
    } catch (err) {
      tally.failures++;
      tally.firstError ??= (err as Error).message;
    }
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return tally;
});
