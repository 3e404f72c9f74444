import { identityConnectionWithKey, type DeviceConnection } from '../../src/clients/connection-string.js';
import type { HubUnderTest } from '../lib/hub.js';
import { BENCH_DEVICE_KEY, benchDeviceId } from '../lib/device-auth.js';
import { registerDevices, serviceConnection } from '../lib/registry.js';
import type { LatencySummary } from '../lib/latency.js';
import { bareRoundTrip } from '../lib/baseline.js';
import { Worker, runAll } from '../lib/workers.js';
import type { Row } from '../lib/report.js';
import type { DeviceTransport } from '../../src/clients/device-clients.js';

export interface LatencyOptions {
  sequential: number;
  concurrent: number;
  inFlight: number;
  methodDevices: number;
  twinPatches: number;
  timeMs: number;
}

function deviceConnection(hub: HubUnderTest, deviceId: string): DeviceConnection {
  return identityConnectionWithKey(serviceConnection(hub), { deviceId }, BENCH_DEVICE_KEY);
}

/**
 * The latency targets, as multiples of the same run's bare MQTT round trip (lib/baseline.ts), so that
 * they hold on a slow box as on a fast one (BENCHMARKS.md: how they were set).
 */
const TARGETS = { methodP50: 8, methodP99: 10, patchP50: 8 };

function baselineRows(group: string, bare: LatencySummary): Row[] {
  return [
    {
      group,
      name: 'bare aedes round trip p50 (same run)',
      value: bare.p50,
      unit: 'ms',
      note: `TLS, QoS 0, publish → other process → back; ${errorsNote(bare)}`,
    },
    { group, name: 'bare aedes round trip p99 (same run)', value: bare.p99, unit: 'ms' },
  ];
}

export function errorsNote(s: LatencySummary): string {
  return `${s.calls} calls${s.errors ? `, ${s.errors} errors (${s.firstError})` : ''}`;
}

interface RoundTrips {
  sequential: LatencySummary;
  concurrent: LatencySummary;
  devices: number;
}

/** Direct-method round trips (service process → hub → device process → back), sequential and concurrent. */
async function methodRoundTrips(hub: HubUnderTest, o: LatencyOptions, transport: DeviceTransport): Promise<RoundTrips> {
  const deviceIds = Array.from({ length: o.methodDevices }, (_, i) => benchDeviceId(`method-${transport}`, i));
  await registerDevices(hub, deviceIds);
  const devices = new Worker('method-device', { devices: deviceIds.map((id) => deviceConnection(hub, id)), transport });
  try {
    await devices.next('ready', 60_000);
    const [r] = await runAll<{ sequential: LatencySummary; concurrent: LatencySummary }>(
      [
        new Worker('method-service', {
          service: serviceConnection(hub),
          deviceIds,
          sequential: o.sequential,
          concurrent: o.concurrent,
          inFlight: o.inFlight,
          timeMs: o.timeMs,
        }),
      ],
      o.timeMs * 3 + 60_000,
    );
    return { ...r, devices: deviceIds.length };
  } finally {
    await devices.stop();
  }
}

/** The round-trip rows; `targets` (ratios to a baseline) go after the sequential latencies. */
function roundTripRows(
  group: string,
  o: LatencyOptions,
  { sequential: seq, concurrent: con, devices }: RoundTrips,
  targets: Row[] = [],
): Row[] {
  return [
    { group, name: 'round trip p50, sequential', value: seq.p50, unit: 'ms', note: errorsNote(seq) },
    { group, name: 'round trip p99, sequential', value: seq.p99, unit: 'ms' },
    ...targets,
    { group, name: 'calls/s, sequential', value: seq.rate, unit: 'calls/s' },
    {
      group,
      name: `round trip p50, ${o.inFlight} in flight`,
      value: con.p50,
      unit: 'ms',
      note: `${errorsNote(con)} over ${devices} devices`,
    },
    { group, name: `round trip p99, ${o.inFlight} in flight`, value: con.p99, unit: 'ms' },
    { group, name: `calls/s, ${o.inFlight} in flight`, value: con.rate, unit: 'calls/s' },
  ];
}

/** Direct methods to devices on MQTT, with the targets against the same run's bare round trip. */
export async function methodsSuite(hub: HubUnderTest, o: LatencyOptions): Promise<Row[]> {
  const r = await methodRoundTrips(hub, o, 'mqtt');
  const bare = await bareRoundTrip(hub, o.sequential, o.timeMs);
  const group = 'direct method';
  return [
    ...baselineRows(group, bare),
    ...roundTripRows(group, o, r, [
      {
        group,
        name: 'round trip p50 / bare p50, sequential',
        value: r.sequential.p50 / bare.p50,
        unit: 'ratio',
        target: { op: '<=', value: TARGETS.methodP50 },
      },
      {
        group,
        name: 'round trip p99 / bare p99, sequential',
        value: r.sequential.p99 / bare.p99,
        unit: 'ratio',
        target: { op: '<=', value: TARGETS.methodP99 },
      },
    ]),
  ];
}

/** The same calls to devices on AMQP (azure-iot-device-amqp), to set beside the MQTT rows. */
export async function methodsAmqpSuite(hub: HubUnderTest, o: LatencyOptions): Promise<Row[]> {
  return roundTripRows('direct method, AMQP device', o, await methodRoundTrips(hub, o, 'amqp'));
}

/** Desired-property propagation: service PATCH of the twin → the device's 'properties.desired'. */
export async function twinSuite(hub: HubUnderTest, o: LatencyOptions): Promise<Row[]> {
  const deviceId = benchDeviceId('twin', 0);
  await registerDevices(hub, [deviceId]);
  const [r] = await runAll<LatencySummary>(
    [
      new Worker('twin', {
        service: serviceConnection(hub),
        device: deviceConnection(hub, deviceId),
        deviceId,
        count: o.twinPatches,
        timeMs: o.timeMs,
      }),
    ],
    o.timeMs * 2 + 60_000,
  );
  const bare = await bareRoundTrip(hub, o.twinPatches, o.timeMs);
  const group = 'desired patch';
  return [
    ...baselineRows(group, bare),
    { group, name: 'patch → device callback p50', value: r.p50, unit: 'ms', note: errorsNote(r) },
    { group, name: 'patch → device callback p99', value: r.p99, unit: 'ms' },
    {
      group,
      name: 'patch → device callback p50 / bare p50',
      value: r.p50 / bare.p50,
      unit: 'ratio',
      target: { op: '<=', value: TARGETS.patchP50 },
    },
  ];
}
