// The near end of the bare MQTT round trip (lib/baseline.ts): publishes a request (QoS 0, a method
// call's size), which the echo process publishes back, and times each one from publish to arrival.
import mqtt from 'mqtt';
import { createSecureContext } from 'node:tls';
import { measureLatency } from '../lib/latency.js';
import { nowMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ port: number; ca: string; count: number; timeMs: number }>(async (config) => {
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: config.port,
    secureContext: createSecureContext({ ca: config.ca }),
    clientId: 'bench-requester',
    reconnectPeriod: 0,
  } as mqtt.IClientOptions);
  await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject));
  await new Promise((resolve, reject) => client.subscribe('bench/reply/+', { qos: 0 }, (err) => (err ? reject(err) : resolve(undefined))));
  const waiting = new Map<string, () => void>();
  client.on('message', (topic) => waiting.get(topic.slice('bench/reply/'.length))?.());
  const payload = JSON.stringify({ ping: 'x'.repeat(64) });
  const roundTrip = (i: number) =>
    new Promise<number>((resolve, reject) => {
      const id = String(i);
      const timer = setTimeout(() => reject(new Error(`request ${id} not echoed within 10 s`)), 10_000);
      const start = nowMs();
      waiting.set(id, () => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(nowMs() - start);
      });
      client.publish(`bench/request/${id}`, payload, { qos: 0 });
    });
  await measureLatency((i) => roundTrip(-1 - i), { count: 100, lanes: 1, timeMs: config.timeMs }); // warm-up
  const result = await measureLatency(roundTrip, { count: config.count, lanes: 1, timeMs: config.timeMs });
  client.end(true);
  return result;
});
