import { nowMs, percentile } from './stats.js';

export interface LatencySummary {
  calls: number;
  errors: number;
  p50: number;
  p99: number;
  /** Completed calls per second over the whole phase. */
  rate: number;
  firstError?: string;
}

/**
 * Runs `call` from `lanes` concurrent loops until `count` calls have started, `timeMs` has passed or
 * `while` says no more, timing each one (or taking the milliseconds it returns, when it times a part of itself).
 */
export async function measureLatency(
  call: (i: number) => Promise<number | void>,
  options: { count: number; lanes: number; timeMs: number; while?: () => boolean },
): Promise<LatencySummary> {
  const samples: number[] = [];
  let started = 0;
  let errors = 0;
  let firstError: string | undefined;
  const begin = nowMs();
  const deadline = begin + options.timeMs;
  const lane = async () => {
    while (started < options.count && nowMs() < deadline && (options.while?.() ?? true)) {
      const i = started++;
      const t0 = nowMs();
      try {
        const measured = await call(i);
        samples.push(typeof measured === 'number' ? measured : nowMs() - t0);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: options.lanes }, lane));
  const elapsed = (nowMs() - begin) / 1000;
  return {
    calls: samples.length,
    errors,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    rate: samples.length / elapsed,
    firstError,
  };
}

/**
 * Waits for the callback `arrivals` holds under `key` (the receiving side calls it), and resolves with
 * the milliseconds since `start`; rejects, saying that `what` did not arrive, after `timeoutMs`.
 */
export function arrival<K>(arrivals: Map<K, () => void>, key: K, start: number, what: string, timeoutMs = 10_000): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs / 1000} s`)), timeoutMs);
    arrivals.set(key, () => {
      clearTimeout(timer);
      arrivals.delete(key);
      resolve(nowMs() - start);
    });
  });
}
