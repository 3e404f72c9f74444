import { createHash } from 'node:crypto';
import type { HubUnderTest } from '../lib/hub.js';
import { BENCH_DEVICE_KEY, benchDeviceId } from '../lib/device-auth.js';
import { identityConnectionWithKey } from '../../src/clients/connection-string.js';
import { registerDevices, serviceConnection } from '../lib/registry.js';
import type { LatencySummary } from '../lib/latency.js';
import type { D2CTally } from '../lib/d2c.js';
import { median, wallMs } from '../lib/stats.js';
import { Worker } from '../lib/workers.js';
import type { Row } from '../lib/report.js';
import type { SoakTelemetryTally } from '../workers/soak-telemetry.js';

export interface SoakOptions {
  minutes: number;
  /**
   * The first part of the run that RSS may grow in (heaps, caches and pools filling), in ms: at the
   * rates below the event log's in-memory tail (2 × 4,096 events per partition at most) fills in ~3 min.
   */
  warmUpMs: number;
  telemetryDevices: number;
  telemetryPerSecond: number;
  sdkDevices: number;
  /** Direct-method calls per second, and as many desired patches (each answered by a reported patch). */
  servicePerSecond: number;
  churnDevices: number;
  connectsPerSecond: number;
  /** How often the hub's RSS is read. */
  sampleMs: number;
}

const MiB = 2 ** 20;

/** The hub's default partition count, and its partition of a device: a stable hash of the id (events/event-log.ts). */
const PARTITIONS = 4;
const partitionOf = (deviceId: string) => createHash('sha256').update(deviceId).digest().readUInt32BE(0) % PARTITIONS;

/**
 * `count` of `candidates`, as many in each partition: every partition's in-memory tail of events
 * (a bounded cache) fills at the same pace, within the warm-up, rather than the quietest one's
 * filling for most of the run.
 */
function balanced(candidates: string[], count: number): string[] {
  const perPartition = Array.from({ length: PARTITIONS }, () => [] as string[]);
  for (const id of candidates) perPartition[partitionOf(id)]!.push(id);
  const chosen: string[] = [];
  for (let i = 0; chosen.length < count; i++) {
    const id = perPartition[i % PARTITIONS]![Math.floor(i / PARTITIONS)];
    if (id === undefined) throw new Error(`${candidates.length} candidate ids give fewer than ${count} devices spread evenly`);
    chosen.push(id);
  }
  return chosen;
}

/**
 * Mixed load on one hub for minutes (D2C read by an Event Hubs consumer, direct methods, desired
 * patches answered by reported ones, connects and disconnects), each at a steady, bounded rate,
 * with the hub's RSS read throughout: after the warm-up its peaks should not rise (within 10 %).
 */
export async function soakSuite(hub: HubUnderTest, o: SoakOptions): Promise<Row[]> {
  const durationMs = o.minutes * 60_000;
  const ids = (kind: string, n: number) => Array.from({ length: n }, (_, i) => benchDeviceId(`soak-${kind}`, i));
  const [telemetryIds, sdkIds, churnIds] = [
    balanced(ids('d2c', o.telemetryDevices * 8), o.telemetryDevices),
    ids('sdk', o.sdkDevices),
    ids('churn', o.churnDevices),
  ];
  await registerDevices(hub, [...telemetryIds, ...sdkIds, ...churnIds]);
  const target = { hostName: hub.hostName, port: hub.port, ca: hub.ca };
  const tag = 'soak';
  const consumer = new Worker('eh-lean-consumer', {
    connectionString: hub.eventHubConnectionString,
    tag,
    expected: Number.MAX_SAFE_INTEGER,
    since: wallMs() - 1000,
    timeMs: durationMs + 120_000,
  });
  const devices = new Worker('soak-devices', {
    devices: sdkIds.map((id) => identityConnectionWithKey(serviceConnection(hub), { deviceId: id }, BENCH_DEVICE_KEY)),
  });
  const workers = [consumer, devices];
  try {
    await Promise.all(workers.map((w) => w.next('ready', 120_000)));
    const telemetry = new Worker('soak-telemetry', {
      target,
      deviceIds: telemetryIds,
      perSecond: o.telemetryPerSecond,
      payloadBytes: 200,
      tag,
      durationMs,
    });
    workers.push(telemetry);
    await telemetry.next('ready', 60_000);
    const service = new Worker('soak-service', {
      service: serviceConnection(hub),
      deviceIds: sdkIds,
      perSecond: o.servicePerSecond,
      durationMs,
    });
    const churn = new Worker('soak-churn', { target, deviceIds: churnIds, perSecond: o.connectsPerSecond, durationMs });
    workers.push(service, churn);

    const samples: Array<{ atMs: number; rss: number }> = [];
    const started = Date.now();
    const sampler = setInterval(() => {
      const rss = hub.rss();
      if (rss !== null) samples.push({ atMs: Date.now() - started, rss });
    }, o.sampleMs);
    const bound = durationMs + 120_000;
    let results: [
      { result: SoakTelemetryTally },
      { result: { methods: LatencySummary; patches: LatencySummary } },
      { result: { connects: number; failures: number; firstError?: string } },
    ];
    try {
      results = await Promise.all([
        telemetry.next<{ result: SoakTelemetryTally }>('result', bound),
        service.next<{ result: { methods: LatencySummary; patches: LatencySummary } }>('result', bound),
        churn.next<{ result: { connects: number; failures: number; firstError?: string } }>('result', bound),
      ]);
    } finally {
      clearInterval(sampler);
    }
    const [{ result: sent }, { result: calls }, { result: churned }] = results;
    consumer.send({ type: 'expect', count: sent.acked });
    const { result: read } = await consumer.next<{ result: D2CTally }>('result', 60_000);
    devices.send({ type: 'stop' });
    const { result: answered } = await devices.next<{
      result: { methods: number; desired: number; reported: number; reportErrors: number; firstError?: string };
    }>('result', 30_000);
    return soakRows(o, durationMs, samples, { sent, read, calls, churned, answered });
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

function soakRows(
  o: SoakOptions,
  durationMs: number,
  samples: Array<{ atMs: number; rss: number }>,
  r: {
    sent: SoakTelemetryTally;
    read: D2CTally;
    calls: { methods: LatencySummary; patches: LatencySummary };
    churned: { connects: number; failures: number; firstError?: string };
    answered: { methods: number; desired: number; reported: number; reportErrors: number; firstError?: string };
  },
): Row[] {
  const group = 'soak';
  const seconds = durationMs / 1000;
  const after = samples.filter((s) => s.atMs >= o.warmUpMs).map((s) => s.rss);
  const [low, high, middle] = [Math.min(...after), Math.max(...after), median(after)];
  // RSS swings by a hundred MB or so: V8 grows its young generation up to 128 MB and shrinks it again
  // (a cycle of ~3.5 min here), and the event log's tail fills and is trimmed by half. Flat means
  // the peaks do not rise: the highest sample of the second half after the warm-up against the
  // first half's (each half spans a cycle at the default 10 minutes).
  const half = Math.floor(after.length / 2);
  const [firstPeak, secondPeak] = [Math.max(...after.slice(0, half)), Math.max(...after.slice(half))];
  const rise = ((secondPeak - firstPeak) / firstPeak) * 100;
  const perMinute = samples.filter((_, i) => i % Math.max(1, Math.round(60_000 / o.sampleMs)) === 0).map((s) => Math.round(s.rss / MiB));
  const errors = (s: LatencySummary) => (s.errors ? `, ${s.errors} errors (${s.firstError})` : '');
  return [
    {
      group,
      name: 'run',
      value: o.minutes,
      unit: 'min',
      note: `warm-up ${(o.warmUpMs / 60_000).toFixed(1)} min; RSS read every ${o.sampleMs / 1000} s (${samples.length} samples); MiB each minute: ${perMinute.join(' ')}`,
    },
    {
      group,
      name: 'hub RSS after the warm-up, median',
      value: middle / MiB,
      unit: 'MiB',
      note: `${after.length} samples; min ${(low / MiB).toFixed(0)}, max ${(high / MiB).toFixed(0)} (swing ${(((high - low) / middle) * 100).toFixed(0)} % of the median)`,
    },
    {
      group,
      name: 'hub RSS peaks, second half / first',
      value: rise,
      unit: '% rise',
      target: { op: '<=', value: 10 },
      note: `the highest sample of each half after the warm-up: ${(firstPeak / MiB).toFixed(0)} → ${(secondPeak / MiB).toFixed(0)} MiB`,
    },
    {
      group,
      name: 'D2C acknowledged',
      value: r.sent.acked / seconds,
      unit: 'msg/s',
      note: `${r.sent.acked} acked of ${o.telemetryPerSecond}/s from ${o.telemetryDevices} devices, ${r.read.count} read by the Event Hubs consumer; ${r.sent.behind} sends skipped (window full), ${r.sent.reconnects} reconnects${r.sent.firstError ? ` (${r.sent.firstError})` : ''}`,
    },
    {
      group,
      name: 'direct methods',
      value: r.calls.methods.calls / seconds,
      unit: 'calls/s',
      note: `p50 ${r.calls.methods.p50.toFixed(1)} ms, p99 ${r.calls.methods.p99.toFixed(1)} ms${errors(r.calls.methods)}; ${r.answered.methods} answered by ${o.sdkDevices} SDK devices`,
    },
    {
      group,
      name: 'desired patches',
      value: r.calls.patches.calls / seconds,
      unit: '/s',
      note: `updateTwin p50 ${r.calls.patches.p50.toFixed(1)} ms, p99 ${r.calls.patches.p99.toFixed(1)} ms${errors(r.calls.patches)}; ${r.answered.desired} seen by the devices, ${r.answered.reported} reported back${r.answered.reportErrors ? `, ${r.answered.reportErrors} report errors (${r.answered.firstError})` : ''}`,
    },
    {
      group,
      name: 'connects and disconnects',
      value: r.churned.connects / seconds,
      unit: '/s',
      note: `${r.churned.connects} over ${o.churnDevices} devices${r.churned.failures ? `, ${r.churned.failures} failed (${r.churned.firstError})` : ''}`,
    },
  ];
}
