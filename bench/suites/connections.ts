import { join } from 'node:path';
import { cpuSecondsOf, type HubUnderTest } from '../lib/hub.js';
import type { MqttTarget } from '../lib/device-auth.js';
import { benchDeviceId } from '../lib/device-auth.js';
import { registerDevices } from '../lib/registry.js';
import { nowMs, sleep } from '../lib/stats.js';
import { Worker } from '../lib/workers.js';
import type { Row } from '../lib/report.js';

export interface ConnectionOptions {
  /** Upper bound on concurrent connections. */
  max: number;
  /** Connections each client process holds at most. */
  perWorker: number;
  /** Connects in flight per client process. */
  concurrency: number;
  /** Bound on each step. */
  stepTimeMs: number;
}

interface Batch {
  ok: number;
  failures: Record<string, number>;
  ms: number;
  /** CPU this client process spent on the batch. */
  cpuMs: number;
  open: number;
  dropped: number;
}

/** The counts to hold, step by step, up to the bound. */
function steps(max: number): number[] {
  return [1000, 2500, 5000, 7500, 10_000, 15_000, 20_000, 30_000, 50_000].filter((n) => n < max).concat(max);
}

function perConnect(cpuMs: number, connects: number): string {
  return connects > 0 && Number.isFinite(cpuMs) ? `${((cpuMs * 1000) / connects).toFixed(0)} µs` : '?';
}

function describe(failures: Record<string, number>): string {
  return Object.entries(failures)
    .map(([reason, n]) => `${n}× ${reason}`)
    .join(', ');
}

/** One round of new connections spread over the client processes: the rate, and CPU per connect on each side. */
async function connectRound(workers: Worker[], deviceIds: string[], server: { name: string; pid: number }, timeoutMs: number) {
  const batches = workers.map((w, i) => {
    w.send({ type: 'connect', deviceIds: deviceIds.filter((_, j) => j % workers.length === i) });
    return w.next<Batch>('connected', timeoutMs);
  });
  const start = nowMs();
  const serverCpu = cpuSecondsOf(server.pid);
  const results = await Promise.all(batches);
  const seconds = (nowMs() - start) / 1000;
  const serverCpuMs = ((cpuSecondsOf(server.pid) ?? NaN) - (serverCpu ?? NaN)) * 1000;
  const ok = results.reduce((n, r) => n + r.ok, 0);
  const failures: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
  return {
    ok,
    seconds,
    rate: ok / seconds,
    failures,
    // On shared cores the rate says little without what each side spent.
    cpuNote: `CPU per connect: ${server.name} ${perConnect(serverCpuMs, ok)}, clients ${perConnect(
      results.reduce((n, r) => n + r.cpuMs, 0),
      ok,
    )}`,
  };
}

function connectors(count: number, target: MqttTarget, o: ConnectionOptions): Worker[] {
  return Array.from({ length: count }, () => new Worker('connector', { target, concurrency: o.concurrency, timeMs: o.stepTimeMs }));
}

/**
 * The ceiling for the first step: the same connects (TLS with a server certificate from the hub's CA,
 * CONNECT, CONNACK) from as many client processes against a bare aedes, which checks nothing, after
 * as many unmeasured ones.
 */
async function bareAedesRound(hub: HubUnderTest, deviceIds: string[], workerCount: number, o: ConnectionOptions): Promise<Row> {
  const broker = new Worker('bare-broker', { tlsDir: join(hub.dataDir, 'tls') });
  const workers: Worker[] = [];
  try {
    const { port, ca } = await broker.next<{ port: number; ca: string }>('ready', 30_000);
    workers.push(...connectors(workerCount, { hostName: hub.hostName, port, ca }, o));
    await Promise.all(workers.map((w) => w.next('ready', 30_000)));
    // A fresh broker process and fresh clients spend the first connects compiling; the hub has been
    // running (and its clients are as fresh): an unmeasured round first, under other client ids.
    await connectRound(
      workers,
      deviceIds.map((id) => `${id}-warm-up`),
      { name: 'aedes', pid: broker.pid },
      o.stepTimeMs + 30_000,
    );
    const round = await connectRound(workers, deviceIds, { name: 'aedes', pid: broker.pid }, o.stepTimeMs + 30_000);
    console.log(
      `  bare aedes: ${round.ok}/${deviceIds.length} in ${round.seconds.toFixed(1)} s (${Math.round(round.rate)}/s; ${round.cpuNote})`,
    );
    return {
      group: 'connections',
      name: 'bare aedes (TLS, no auth): new connections/s',
      value: round.rate,
      unit: '/s',
      note: `${round.ok} connects; ${round.cpuNote}${round.ok < deviceIds.length ? `; ${describe(round.failures)}` : ''}`,
    };
  } finally {
    await Promise.all([...workers, broker].map((w) => w.stop()));
  }
}

/**
 * New connections per second (TLS + SAS, CONNACK) and the most concurrent connections the hub holds,
 * raised in steps from several client processes, with the hub's RSS per connection; the first step
 * also against a bare aedes.
 */
export async function connectionsSuite(hub: HubUnderTest, o: ConnectionOptions): Promise<Row[]> {
  const group = 'connections';
  const ids = Array.from({ length: o.max }, (_, i) => benchDeviceId('conn', i));
  const registerStart = nowMs();
  await registerDevices(hub, ids);
  const registrations = o.max / ((nowMs() - registerStart) / 1000);

  const workerCount = Math.ceil(o.max / o.perWorker);
  const allSteps = steps(o.max);
  const rows: Row[] = [
    { group, name: 'device registrations/s (REST, 16 in flight)', value: registrations, unit: '/s', note: `${o.max} devices` },
    await bareAedesRound(hub, ids.slice(0, allSteps[0]), workerCount, o),
  ];
  const workers = connectors(workerCount, { hostName: hub.hostName, port: hub.port, ca: hub.ca }, o);
  try {
    await Promise.all(workers.map((w) => w.next('ready', 30_000)));
    await sleep(1000);
    const rssBefore = hub.rss();
    let held = 0;
    let heldRss: number | null = null;
    let stoppedBecause = `reached the bound of ${o.max}`;
    let firstStep: { rate: number; note: string } | undefined;
    for (const step of allSteps) {
      const fresh = ids.slice(held, step);
      const { ok, seconds, rate, failures, cpuNote } = await connectRound(
        workers,
        fresh,
        { name: 'hub', pid: hub.pid },
        o.stepTimeMs + 30_000,
      );
      firstStep ??= {
        rate,
        note: `${ok} connects from ${workerCount} processes, ${o.concurrency * workerCount} in flight; ${cpuNote}${ok < fresh.length ? `; ${describe(failures)}` : ''}`,
      };
      await sleep(2000);
      const status = await Promise.all(
        workers.map((w) => {
          w.send({ type: 'status' });
          return w.next<{ open: number; dropped: number }>('status', 10_000);
        }),
      );
      const open = status.reduce((n, s) => n + s.open, 0);
      const dropped = status.reduce((n, s) => n + s.dropped, 0);
      console.log(
        `  ${step}: ${open} open, ${ok}/${fresh.length} new in ${seconds.toFixed(1)} s (${Math.round(rate)}/s; ${cpuNote})${dropped ? `, ${dropped} dropped` : ''}${ok < fresh.length ? `, failed: ${describe(failures)}` : ''}`,
      );
      if (open < step) {
        stoppedBecause = `stopped at step ${step}: ${open} open${dropped ? `, ${dropped} dropped after CONNACK` : ''}${ok < fresh.length ? `; ${describe(failures) || 'step timed out'}` : ''}`;
        held = Math.max(held, open);
        heldRss = hub.rss();
        break;
      }
      held = open;
      heldRss = hub.rss();
    }
    rows.push(
      {
        group,
        name: 'new connections/s (TLS + SAS → CONNACK)',
        value: firstStep?.rate ?? null,
        unit: '/s',
        target: { op: '>=', value: 1000 },
        note: firstStep?.note,
      },
      { group, name: 'concurrent connections held', value: held, unit: 'conns', target: { op: '>=', value: 10_000 }, note: stoppedBecause },
      {
        group,
        name: 'hub RSS per connection',
        value: rssBefore !== null && heldRss !== null && held > 0 ? (heldRss - rssBefore) / held / 1024 : null,
        unit: 'KiB',
        note: heldRss !== null ? `hub RSS ${(heldRss / 2 ** 20).toFixed(0)} MiB at ${held}` : 'no /proc',
      },
    );
    return rows;
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}
