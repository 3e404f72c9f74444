import { join } from 'node:path';
import type { HubUnderTest } from './hub.js';
import type { LatencySummary } from './latency.js';
import { Worker, runAll } from './workers.js';

/**
 * The yardstick of the latency rows, measured in the same run on the same box: a bare aedes on TLS
 * (certificate from the hub's CA), one process publishing a request, another publishing it back,
 * timed in the first; sequential round trips. A direct method is the same two hops through a broker
 * with the hub's work added, so the ratio of the two tells the hub's share on a slow box as on a fast one.
 */
export async function bareRoundTrip(hub: HubUnderTest, count: number, timeMs: number): Promise<LatencySummary> {
  const broker = new Worker('bare-broker', { tlsDir: join(hub.dataDir, 'tls') });
  try {
    const { port, ca } = await broker.next<{ port: number; ca: string }>('ready', 30_000);
    const echo = new Worker('mqtt-echo', { port, ca });
    try {
      await echo.next('ready', 30_000);
      const [result] = await runAll<LatencySummary>([new Worker('mqtt-round-trip', { port, ca, count, timeMs })], timeMs * 2 + 60_000);
      return result;
    } finally {
      await echo.stop();
    }
  } finally {
    await broker.stop();
  }
}
