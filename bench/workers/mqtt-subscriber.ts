// The baseline's observer: one MQTT subscriber at QoS 1 on every device's telemetry topic, counting
// the messages of one run (tagged in the topic's property bag).
import mqtt from 'mqtt';
import { createSecureContext } from 'node:tls';
import type { D2CTally } from '../lib/d2c.js';
import { wallMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ port: number; ca: string; tag: string; expected: number; timeMs: number }>(async (config, ctx) => {
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: config.port,
    secureContext: createSecureContext({ ca: config.ca }),
    clientId: 'bench-observer',
    reconnectPeriod: 0,
  } as mqtt.IClientOptions);
  await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject));
  await new Promise((resolve, reject) =>
    client.subscribe('devices/+/messages/events/#', { qos: 1 }, (err) => (err ? reject(err) : resolve(undefined))),
  );
  const tally: D2CTally = { count: 0, firstAt: 0, lastAt: 0 };
  const marker = `&bench=${config.tag}`;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  client.on('message', (topic) => {
    if (!topic.endsWith(marker)) return;
    const now = wallMs();
    if (tally.count++ === 0) tally.firstAt = now;
    tally.lastAt = now;
    if (tally.count >= config.expected) done();
  });
  ctx.on((m) => m.type === 'expect' && ((config.expected = m.count), tally.count >= m.count && done()));
  ctx.report({ type: 'ready' });
  const timer = setTimeout(done, config.timeMs);
  await Promise.race([finished, new Promise((resolve) => ctx.stopping.addEventListener('abort', resolve))]);
  clearTimeout(timer);
  client.end(true);
  return tally;
});
