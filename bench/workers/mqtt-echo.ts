// The far end of the bare MQTT round trip (lib/baseline.ts): an mqtt.js client on the bare broker that
// publishes each request it gets back on the reply topic, as a device answers a direct method.
import mqtt from 'mqtt';
import { createSecureContext } from 'node:tls';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ port: number; ca: string }>(async (config, ctx) => {
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: config.port,
    secureContext: createSecureContext({ ca: config.ca }),
    clientId: 'bench-echo',
    reconnectPeriod: 0,
  } as mqtt.IClientOptions);
  await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject));
  await new Promise((resolve, reject) =>
    client.subscribe('bench/request/+', { qos: 0 }, (err) => (err ? reject(err) : resolve(undefined))),
  );
  client.on('message', (topic, payload) => client.publish(`bench/reply/${topic.slice('bench/request/'.length)}`, payload, { qos: 0 }));
  ctx.report({ type: 'ready' });
  await new Promise((resolve) => ctx.stopping.addEventListener('abort', resolve));
  client.end(true);
});
