/**
 * IoT Hub's operation throttles ("IoT Hub quotas and throttling"), for one unit of each tier, as
 * token buckets. IoT Hub applies them "in minute ranges", so a bucket holds a minute's worth and
 * refills continuously; an operation that finds it empty is refused (429 on REST, CONNACK 3 on
 * MQTT) and the client is expected to back off and retry.
 */
export type Tier = 's1' | 's2' | 's3';
export type Operation = 'registry' | 'connect' | 'd2c' | 'twinRead' | 'twinUpdate' | 'methods';

export const TIERS: readonly Tier[] = ['s1', 's2', 's3'];

/** Operations per second for one unit (S1 and Free share their row; direct methods: 160 KB/s/unit at 4 KB a call on S1). */
const RATES: Record<Tier, Record<Operation, number>> = {
  s1: { registry: 100 / 60, connect: 100, d2c: 100, twinRead: 100, twinUpdate: 50, methods: 40 },
  s2: { registry: 100 / 60, connect: 120, d2c: 120, twinRead: 100, twinUpdate: 50, methods: 120 },
  s3: { registry: 5000 / 60, connect: 6000, d2c: 6000, twinRead: 500, twinUpdate: 250, methods: 6000 },
};

const WINDOW_SECONDS = 60;

class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly capacity: number,
    private readonly now: () => number,
  ) {
    this.tokens = capacity;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class Throttle {
  private readonly buckets = new Map<Operation, TokenBucket>();

  constructor(
    readonly tier: Tier,
    now: () => number = Date.now,
  ) {
    for (const [operation, perSecond] of Object.entries(RATES[tier]) as Array<[Operation, number]>) {
      this.buckets.set(operation, new TokenBucket(perSecond, perSecond * WINDOW_SECONDS, now));
    }
  }

  /** True when the operation may proceed (and counts it). */
  allow(operation: Operation): boolean {
    return this.buckets.get(operation)!.take();
  }
}

/** Which throttle a REST call counts against, from its method and path; undefined for calls IoT Hub does not throttle this way. */
export function restOperation(method: string, path: string): Operation | undefined {
  if (/^\/twins\/[^/]+(\/modules\/[^/]+)?\/methods\/?$/.test(path)) return 'methods';
  if (path.startsWith('/twins/')) return method === 'GET' ? 'twinRead' : 'twinUpdate';
  if (path === '/devices/query' || path.startsWith('/devices/query/')) return undefined; // queries have their own quota
  if (path.startsWith('/devices') || path.startsWith('/statistics/')) return 'registry';
  return undefined;
}
