import { benchDeviceId } from '../lib/device-auth.js';
import type { HubUnderTest } from '../lib/hub.js';
import type { LatencySummary } from '../lib/latency.js';
import { registerDevices } from '../lib/registry.js';
import type { Row } from '../lib/report.js';
import { Worker, runAll } from '../lib/workers.js';

export interface FairnessOptions {
  /** Reported-property patches the flooding device writes back to back. */
  patches: number;
  /** Round trips timed on the quiet hub first. */
  quietSamples: number;
  timeMs: number;
}

/**
 * One noisy client: a device's QoS 1 round trip (telemetry publish → PUBACK) on a quiet hub, then
 * while another device sends reported-property patches back to back. Throttling is off (the hub's
 * default); what keeps the second figure near the first is the hub's per-connection work bound.
 */
export async function fairnessSuite(hub: HubUnderTest, o: FairnessOptions): Promise<Row[]> {
  const flooderId = benchDeviceId('flooder', 0);
  const probeId = benchDeviceId('probe', 0);
  await registerDevices(hub, [flooderId, probeId]);
  const [r] = await runAll<{ quiet: LatencySummary; beside: LatencySummary; floodMs: number; patchesAcked: number }>(
    [new Worker('flood-probe', { target: { hostName: hub.hostName, port: hub.port, ca: hub.ca }, flooderId, probeId, ...o })],
    o.timeMs * 2 + 60_000,
  );
  const group = 'fairness';
  const flood = `${o.patches} reported patches back to back`;
  const calls = (s: LatencySummary) => `${s.calls} round trips${s.errors ? `, ${s.errors} errors (${s.firstError})` : ''}`;
  return [
    { group, name: 'QoS 1 round trip p50, quiet', value: r.quiet.p50, unit: 'ms', note: calls(r.quiet) },
    { group, name: 'QoS 1 round trip p99, quiet', value: r.quiet.p99, unit: 'ms' },
    {
      group,
      name: 'QoS 1 round trip p50, beside a flood',
      value: r.beside.p50,
      unit: 'ms',
      note: `${calls(r.beside)} while another device sent ${flood}`,
    },
    { group, name: 'QoS 1 round trip p99, beside a flood', value: r.beside.p99, unit: 'ms', target: { op: '<=', value: 50 } },
    {
      group,
      name: 'flood: reported patches/s',
      value: r.patchesAcked / (r.floodMs / 1000),
      unit: '/s',
      note: `${r.patchesAcked} of ${o.patches} acknowledged in ${(r.floodMs / 1000).toFixed(1)} s (not throttled)`,
    },
  ];
}
