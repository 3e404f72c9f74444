// Holds many device connections, each a full TLS handshake (no session resumption, as the SDK
// connects), a CONNECT with the SDK's username and SAS token, and its CONNACK: opens them in batches
// on request, with a bounded number of connects in flight, and counts what drops. Hand-encoded
// packets and one TLS context per process (lib/mqtt-wire.ts): mqtt.js cost as much CPU per connect
// as the hub, on the same cores.
import type { TLSSocket } from 'node:tls';
import { deviceMqttOptions, type MqttTarget } from '../lib/device-auth.js';
import { connectWire } from '../lib/mqtt-wire.js';
import { nowMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

interface ConnectorConfig {
  target: MqttTarget;
  /** Connects in flight at once in this process. */
  concurrency: number;
  /** Bound on one batch. */
  timeMs: number;
}

const PINGREQ = Buffer.from([0xc0, 0]);

workerMain<ConnectorConfig>(async (config, ctx) => {
  const open = new Set<TLSSocket>();
  let dropped = 0;
  // The hub closes a connection silent for 1.5 × its keep-alive (240 s, as the options say).
  const pings = setInterval(() => {
    for (const socket of open) socket.write(PINGREQ);
  }, 120_000);

  const connectOne = (deviceId: string): Promise<string | undefined> =>
    connectWire(deviceMqttOptions(config.target, deviceId), () => {}).then(
      (socket) => {
        open.add(socket);
        socket.on('close', () => open.delete(socket) && dropped++);
        return undefined;
      },
      (err: Error & { code?: string }) => String(err.code ?? err.message),
    );

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
  clearInterval(pings);
  const held = open.size;
  for (const socket of open) socket.destroy();
  return { open: held, dropped };
});
