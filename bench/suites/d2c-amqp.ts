import type { HubUnderTest } from '../lib/hub.js';
import { benchDeviceId } from '../lib/device-auth.js';
import { registerDevices } from '../lib/registry.js';
import { Worker } from '../lib/workers.js';
import type { Row } from '../lib/report.js';
import { loadFor, runLoad, type D2COptions } from './d2c.js';

const RUN = 'd2ca';

/**
 * D2C throughput over AMQPS, beside the MQTT rows of the d2c suite: the same 200-byte messages with the
 * same properties, sent as azure-iot-device-amqp sends them (a connection and a telemetry link per
 * device), accepted once durable, and observed by the same lean AMQP consumer.
 */
export async function d2cAmqpSuite(hub: HubUnderTest, o: D2COptions): Promise<Row[]> {
  const group = 'D2C AMQP';
  const rows: Row[] = [];
  const target = { hostName: hub.hostName, port: hub.port, ca: hub.ca };
  await registerDevices(
    hub,
    Array.from({ length: Math.max(...o.deviceCounts) }, (_, i) => benchDeviceId(RUN, i)),
  );
  for (const devices of o.deviceCounts) {
    const tag = `amqp${devices}`;
    const observer = (expected: number, since: number) =>
      new Worker('eh-lean-consumer', { connectionString: hub.eventHubConnectionString, tag, expected, since, timeMs: o.timeMs + 30_000 });
    const result = await runLoad(target, hub.pid, loadFor(o, devices, tag), observer, { publisher: 'd2c-amqp-publisher', run: RUN });
    console.log(`  hub over AMQP, ${devices} devices: ${Math.round(result.endToEndRate)} msg/s end to end; ${result.note}`);
    rows.push(
      { group, name: `hub, ${devices} devices, accepted`, value: result.ackRate, unit: 'msg/s' },
      {
        group,
        name: `hub, ${devices} devices, end to end`,
        value: result.endToEndRate,
        unit: 'msg/s',
        note: `${o.inFlight} unsettled in all; ${result.note}`,
      },
    );
  }
  return rows;
}
