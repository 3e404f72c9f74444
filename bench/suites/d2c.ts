import { join } from 'node:path';
import { cpuSecondsOf, type HubUnderTest } from '../lib/hub.js';
import { benchDeviceId, type MqttTarget } from '../lib/device-auth.js';
import { registerDevices } from '../lib/registry.js';
import type { D2CLoad, D2CTally } from '../lib/d2c.js';
import { wallMs } from '../lib/stats.js';
import { Worker } from '../lib/workers.js';
import type { Row } from '../lib/report.js';

export interface D2COptions {
  deviceCounts: number[];
  messages: number;
  payloadBytes: number;
  /** Unacknowledged publishes over all devices (spread as a per-device window). */
  inFlight: number;
  timeMs: number;
}

interface RunResult {
  acked: number;
  failed: number;
  observed: number;
  ackRate: number;
  endToEndRate: number;
  note: string;
}

/** Publishes one run from up to two publisher processes (MQTT's by default, as devices bench-{run}-N) and counts it at the observer process. */
export async function runLoad(
  target: MqttTarget,
  serverPid: number,
  load: D2CLoad,
  observer: (expected: number, since: number) => Worker,
  { publisher = 'd2c-publisher', run = 'd2c' } = {},
): Promise<RunResult> {
  const ids = Array.from({ length: load.devices }, (_, i) => benchDeviceId(run, i));
  const processes = Math.min(2, load.devices);
  const perDevice = Math.ceil(load.messages / load.devices);
  const watcher = observer(perDevice * load.devices, wallMs() - 1000);
  const publishers = Array.from(
    { length: processes },
    (_, p) => new Worker(publisher, { target, deviceIds: ids.filter((_, i) => i % processes === p), perDevice, load }),
  );
  try {
    await watcher.next('ready', 30_000);
    await Promise.all(publishers.map((w) => w.next('ready', 60_000)));
    const serverCpu = cpuSecondsOf(serverPid);
    const serverMainCpu = cpuSecondsOf(serverPid, 'main');
    for (const w of publishers) w.send({ type: 'go' });
    const done = await Promise.all(publishers.map((w) => w.next<{ result: D2CTally; cpuMs: number }>('result', load.timeMs + 60_000)));
    const sent = done.map((m) => m.result);
    const acked = sent.reduce((n, t) => n + t.count, 0);
    watcher.send({ type: 'expect', count: acked });
    const observed = await watcher.next<{ result: D2CTally; cpuMs: number }>('result', load.timeMs + 60_000);
    const seen = observed.result;
    const serverCpuUsed = (cpuSecondsOf(serverPid) ?? NaN) - (serverCpu ?? NaN);
    const serverMainCpuUsed = (cpuSecondsOf(serverPid, 'main') ?? NaN) - (serverMainCpu ?? NaN);
    const start = Math.min(...sent.map((t) => t.firstAt));
    const lastAck = Math.max(...sent.map((t) => t.lastAt));
    const failed = sent.reduce((n, t) => n + (t.failed ?? 0), 0);
    const errors = [...sent.map((t) => t.firstError), seen.firstError].filter(Boolean);
    return {
      acked,
      failed,
      observed: seen.count,
      ackRate: acked / ((lastAck - start) / 1000),
      endToEndRate: seen.count / ((Math.max(lastAck, seen.lastAt) - start) / 1000),
      note:
        `${acked} acked, ${seen.count} observed${failed ? `, ${failed} failed` : ''}${errors.length ? ` (${errors[0]})` : ''}; ` +
        `CPU s: server ${serverCpuUsed.toFixed(1)} (main thread ${serverMainCpuUsed.toFixed(1)}), publishers ${(done.reduce((n, m) => n + m.cpuMs, 0) / 1000).toFixed(1)}, ` +
        `observer ${(observed.cpuMs / 1000).toFixed(1)} in ${((Math.max(lastAck, seen.lastAt) - start) / 1000).toFixed(1)} s`,
    };
  } finally {
    await Promise.all([watcher, ...publishers].map((w) => w.stop()));
  }
}

export function loadFor(o: D2COptions, devices: number, tag: string): D2CLoad {
  return {
    tag,
    devices,
    messages: o.messages,
    payloadBytes: o.payloadBytes,
    window: Math.max(1, Math.ceil(o.inFlight / devices)),
    timeMs: o.timeMs,
  };
}

/**
 * D2C throughput: QoS 1 publishes acknowledged by the hub and observed on its Event Hubs-compatible
 * endpoint, against the same load on a bare aedes broker on TLS observed by a lean MQTT subscriber.
 * The hub is observed twice: by a lean AMQP consumer (rhea, what the SDK does on the wire), the row
 * compared with bare aedes, and by the official EventHubConsumerClient, to show what the SDK costs.
 */
export async function d2cSuite(hub: HubUnderTest, o: D2COptions): Promise<Row[]> {
  const group = 'D2C';
  const rows: Row[] = [];
  const baseline = new Worker('bare-broker', { tlsDir: join(hub.dataDir, 'tls') });
  const { port, ca } = await baseline.next<{ port: number; ca: string }>('ready', 30_000);
  const hubTarget = { hostName: hub.hostName, port: hub.port, ca: hub.ca };
  const consumer = (worker: string, tag: string) => (expected: number, since: number) =>
    new Worker(worker, { connectionString: hub.eventHubConnectionString, tag, expected, since, timeMs: o.timeMs + 30_000 });
  await registerDevices(
    hub,
    Array.from({ length: Math.max(...o.deviceCounts) }, (_, i) => benchDeviceId('d2c', i)),
  );
  try {
    for (const devices of o.deviceCounts) {
      const base = await runLoad(
        { hostName: hub.hostName, port, ca },
        baseline.pid,
        loadFor(o, devices, `base${devices}`),
        (expected) => new Worker('mqtt-subscriber', { port, ca, tag: `base${devices}`, expected, timeMs: o.timeMs + 30_000 }),
      );
      console.log(`  bare aedes, ${devices} devices: ${Math.round(base.endToEndRate)} msg/s end to end; ${base.note}`);
      rows.push({
        group,
        name: `bare aedes (TLS, QoS 1), ${devices} devices, end to end`,
        value: base.endToEndRate,
        unit: 'msg/s',
        note: `acked ${Math.round(base.ackRate)}/s; ${base.note}`,
      });

      const lean = await runLoad(hubTarget, hub.pid, loadFor(o, devices, `hub${devices}`), consumer('eh-lean-consumer', `hub${devices}`));
      console.log(`  hub, ${devices} devices, lean consumer: ${Math.round(lean.endToEndRate)} msg/s end to end; ${lean.note}`);
      const sdk = await runLoad(hubTarget, hub.pid, loadFor(o, devices, `sdk${devices}`), consumer('eh-consumer', `sdk${devices}`));
      console.log(`  hub, ${devices} devices, SDK consumer: ${Math.round(sdk.endToEndRate)} msg/s end to end; ${sdk.note}`);
      rows.push(
        { group, name: `hub, ${devices} devices, acked (QoS 1)`, value: lean.ackRate, unit: 'msg/s' },
        {
          group,
          name: `hub, ${devices} devices, end to end`,
          value: lean.endToEndRate,
          unit: 'msg/s',
          target: { op: '>=', value: 30_000 },
          note: `lean AMQP consumer; ${lean.note}`,
        },
        {
          group,
          name: `hub / bare aedes, ${devices} devices`,
          value: lean.endToEndRate / base.endToEndRate,
          unit: 'ratio',
          target: { op: '>=', value: 0.5 },
        },
        {
          group,
          name: `hub, ${devices} devices, end to end, @azure/event-hubs consumer`,
          value: sdk.endToEndRate,
          unit: 'msg/s',
          note: `acked ${Math.round(sdk.ackRate)}/s; ${sdk.note}`,
        },
      );
    }
  } finally {
    await baseline.stop();
  }
  return rows;
}
