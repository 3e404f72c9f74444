/**
 * IoT Hub's operation throttles ("IoT Hub quotas and throttling"), for one unit of each tier, as
 * token buckets. IoT Hub applies them "in minute ranges", so a bucket holds a minute's worth and
 * refills continuously; an operation that finds it empty is refused (429 on REST, CONNACK 3 on
 * MQTT) and the client is expected to back off and retry.
 */
export type Tier = 's1' | 's2' | 's3';
export type ThrottleKind =
  'registry' | 'connect' | 'd2c' | 'c2d' | 'c2dReceive' | 'twinRead' | 'twinUpdate' | 'methods' | 'queries' | 'jobs' | 'fileUpload';

export const TIERS: readonly Tier[] = ['s1', 's2', 's3'];

/**
 * Operations per second for one unit, from the docs' table (S1 and Free share their row). Direct
 * methods are metered in 4 KB units of payload: 160, 480 and 24,576 KB/s are 40, 120 and 6,144 meters/s.
 * `d2c` and `c2d` are device-to-cloud and cloud-to-device sends; `c2dReceive` is a device's poll for a
 * cloud-to-device message over HTTPS ("cloud-to-device receives (only when device uses HTTPS)");
 * `fileUpload` is a device's request for a file upload's SAS URI ("file upload initiations").
 */
// prettier-ignore
const RATES: Record<Tier, Record<ThrottleKind, number>> = {
  s1: { registry: 100 / 60, connect: 100, d2c: 100, c2d: 100 / 60, c2dReceive: 1000 / 60, twinRead: 100, twinUpdate: 50, methods: 40, queries: 20 / 60, jobs: 100 / 60, fileUpload: 100 / 60 },
  s2: { registry: 100 / 60, connect: 120, d2c: 120, c2d: 100 / 60, c2dReceive: 1000 / 60, twinRead: 100, twinUpdate: 50, methods: 120, queries: 20 / 60, jobs: 100 / 60, fileUpload: 100 / 60 },
  s3: { registry: 5000 / 60, connect: 6000, d2c: 6000, c2d: 5000 / 60, c2dReceive: 50000 / 60, twinRead: 500, twinUpdate: 250, methods: 6144, queries: 1000 / 60, jobs: 5000 / 60, fileUpload: 5000 / 60 },
};

/** The direct-method throttle's meter: a call's payload counts in started 4 KB units. */
export const METHOD_METER_BYTES = 4096;

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

  take(count: number): boolean {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < count) return false;
    this.tokens -= count;
    return true;
  }
}

export class Throttle {
  private readonly buckets = new Map<ThrottleKind, TokenBucket>();

  constructor(
    readonly tier: Tier,
    now: () => number = Date.now,
  ) {
    for (const [operation, perSecond] of Object.entries(RATES[tier]) as Array<[ThrottleKind, number]>) {
      this.buckets.set(operation, new TokenBucket(perSecond, perSecond * WINDOW_SECONDS, now));
    }
  }

  /** True when an operation of this kind may proceed (and counts it, as `meters` units of its throttle). */
  allow(kind: ThrottleKind, meters = 1): boolean {
    return this.buckets.get(kind)!.take(meters);
  }
}
