// Holds many device connections (raw `mqtt`, TLS + SAS, as the SDK connects): opens them in
// batches on request, with a bounded number of connects in flight, and counts what drops.
import mqtt, { type MqttClient } from 'mqtt';
import { deviceMqttOptions, type MqttTarget } from '../lib/device-auth.js';
import { nowMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

interface ConnectorConfig {
  target: MqttTarget;
  /** Connects in flight at once in this process. */
  concurrency: number;
  /** Bound on one batch. */
  timeMs: number;
}

workerMain<ConnectorConfig>(async (config, ctx) => {
  const open = new Set<MqttClient>();
  let dropped = 0;

  const connectOne = (deviceId: string) =>
    new Promise<string | undefined>((resolve) => {
      const client = mqtt.connect(deviceMqttOptions(config.target, deviceId));
      let connected = false;
      const fail = (reason: string) => {
        if (connected) return;
        client.end(true);
        resolve(reason);
      };
      client.once('connect', () => {
        connected = true;
        open.add(client);
        resolve(undefined);
      });
      client.on('error', (err: Error & { code?: string | number }) => fail(String(err.code ?? err.message)));
      client.on('close', () => {
        if (connected && open.delete(client)) dropped++;
        fail('closed before CONNACK');
      });
    });

  const connectBatch = async (deviceIds: string[]) => {
    const failures: Record<string, number> = {};
    let next = 0;
    let ok = 0;
    const start = nowMs();
    const cpu = process.cpuUsage();
    const deadline = start + config.timeMs;
    const lane = async () => {
      while (next < deviceIds.length && nowMs() < deadline && !ctx.stopping.aborted) {
        const reason = await connectOne(deviceIds[next++]);
        if (reason === undefined) ok++;
        else failures[reason] = (failures[reason] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: config.concurrency }, lane));
    const used = process.cpuUsage(cpu);
    return { ok, failures, ms: nowMs() - start, cpuMs: (used.user + used.system) / 1000, open: open.size, dropped };
  };

  ctx.on((m) => {
    if (m.type === 'connect') connectBatch(m.deviceIds).then((r) => ctx.report({ type: 'connected', ...r }));
    if (m.type === 'status') ctx.report({ type: 'status', open: open.size, dropped });
  });
  ctx.report({ type: 'ready' });
  await new Promise((resolve) => ctx.stopping.addEventListener('abort', resolve));
  for (const client of open) client.end(true);
  return { open: open.size, dropped };
});
