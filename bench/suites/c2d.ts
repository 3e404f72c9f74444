import { identityConnectionWithKey } from '../../src/clients/connection-string.js';
import type { HubUnderTest } from '../lib/hub.js';
import { BENCH_DEVICE_KEY, benchDeviceId } from '../lib/device-auth.js';
import { registerDevices, serviceConnection } from '../lib/registry.js';
import type { LatencySummary } from '../lib/latency.js';
import { Worker, runAll } from '../lib/workers.js';
import type { Row } from '../lib/report.js';
import { errorsNote } from './methods-twin.js';

export interface C2dOptions {
  count: number;
  /** Messages on their way at once (below IoT Hub's queue depth of 50 a device). */
  inFlight: number;
  timeMs: number;
}

/** Cloud-to-device messages: service `Client.send` (AMQPS) → the device's 'message' (MQTT), one at a time, then `inFlight` at once. */
export async function c2dSuite(hub: HubUnderTest, o: C2dOptions): Promise<Row[]> {
  const deviceId = benchDeviceId('c2d', 0);
  await registerDevices(hub, [deviceId]);
  const service = serviceConnection(hub);
  const [r] = await runAll<{ sequential: LatencySummary; concurrent: LatencySummary }>(
    [
      new Worker('c2d', {
        service,
        device: identityConnectionWithKey(service, { deviceId }, BENCH_DEVICE_KEY),
        deviceId,
        count: o.count,
        inFlight: o.inFlight,
        timeMs: o.timeMs,
      }),
    ],
    o.timeMs * 3 + 60_000,
  );
  const group = 'cloud-to-device';
  const { sequential: seq, concurrent: con } = r;
  return [
    { group, name: 'send → device receipt p50, sequential', value: seq.p50, unit: 'ms', note: errorsNote(seq) },
    { group, name: 'send → device receipt p99, sequential', value: seq.p99, unit: 'ms' },
    { group, name: 'sends/s, sequential', value: seq.rate, unit: 'msg/s' },
    { group, name: `send → device receipt p50, ${o.inFlight} in flight`, value: con.p50, unit: 'ms', note: errorsNote(con) },
    { group, name: `send → device receipt p99, ${o.inFlight} in flight`, value: con.p99, unit: 'ms' },
    { group, name: `sends/s, ${o.inFlight} in flight`, value: con.rate, unit: 'msg/s' },
  ];
}
