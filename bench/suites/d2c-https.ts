import type { HubUnderTest } from '../lib/hub.js';
import { benchDeviceId } from '../lib/device-auth.js';
import { registerDevices } from '../lib/registry.js';
import { Worker } from '../lib/workers.js';
import type { Row } from '../lib/report.js';
import { loadFor, runLoad, type D2COptions } from './d2c.js';

const RUN = 'd2ch';

/**
 * D2C throughput over HTTPS, beside the MQTT rows of the d2c suite: the same 200-byte messages with the
 * same properties, posted as azure-iot-device-http posts them (one message a request, or a batch per
 * request), answered 204 once durable, and observed by the same lean AMQP consumer.
 */
export async function d2cHttpsSuite(hub: HubUnderTest, o: D2COptions & { batch: number }): Promise<Row[]> {
  const group = 'D2C HTTPS';
  const rows: Row[] = [];
  const target = { hostName: hub.hostName, port: hub.port, ca: hub.ca };
  const observer = (tag: string) => (expected: number, since: number) =>
    new Worker('eh-lean-consumer', { connectionString: hub.eventHubConnectionString, tag, expected, since, timeMs: o.timeMs + 30_000 });
  await registerDevices(
    hub,
    Array.from({ length: Math.max(...o.deviceCounts) }, (_, i) => benchDeviceId(RUN, i)),
  );
  const publisher = { publisher: 'd2c-https-publisher', run: RUN };
  for (const devices of o.deviceCounts) {
    const single = await runLoad(target, hub.pid, loadFor(o, devices, `https${devices}`), observer(`https${devices}`), publisher);
    console.log(`  hub over HTTPS, ${devices} devices: ${Math.round(single.endToEndRate)} msg/s end to end; ${single.note}`);
    const batch = Math.min(o.batch, Math.ceil(o.messages / devices));
    const batched = await runLoad(
      target,
      hub.pid,
      { ...loadFor(o, devices, `httpsb${devices}`), batch },
      observer(`httpsb${devices}`),
      publisher,
    );
    console.log(
      `  hub over HTTPS, ${devices} devices, batches of ${batch}: ${Math.round(batched.endToEndRate)} msg/s end to end; ${batched.note}`,
    );
    rows.push(
      { group, name: `hub, ${devices} devices, a message a request, acked (204)`, value: single.ackRate, unit: 'msg/s' },
      {
        group,
        name: `hub, ${devices} devices, a message a request, end to end`,
        value: single.endToEndRate,
        unit: 'msg/s',
        note: `${o.inFlight} requests in flight in all; ${single.note}`,
      },
      {
        group,
        name: `hub, ${devices} devices, batches of ${batch}, end to end`,
        value: batched.endToEndRate,
        unit: 'msg/s',
        note: `acked ${Math.round(batched.ackRate)}/s; ${batched.note}`,
      },
    );
  }
  return rows;
}
