import { explain } from './sdk-errors.js';

export interface RetryOptions {
  /** How many calls in all, the first included. */
  attempts: number;
  /** The first backoff ceiling; it doubles with each retry... */
  baseMs: number;
  /** ...up to this. */
  maxMs: number;
  /** Names the operation in the error when it gives up, e.g. "creating device 'x'". */
  what?: string;
}

/** Enough to ride out a hub that is starting or throttling (IoT Hub's advice: back off and retry), bounded to a few seconds. */
export const DEFAULT_RETRY: RetryOptions = { attempts: 6, baseMs: 250, maxMs: 2000 };

const TRANSIENT_NAMES = new Set(['ThrottlingError', 'ServiceUnavailableError']);
const TRANSIENT_STATUS = new Set([429, 503]);
const TRANSIENT_NETWORK = /ECONNREFUSED|ECONNRESET|EPIPE|socket hang up/;

/** Throttling (429), service unavailable (503), and a connection refused or reset: worth another try. */
export function isTransient(err: unknown): boolean {
  const e = err as { constructor?: { name?: string }; code?: unknown; message?: unknown; response?: { statusCode?: number } } | undefined;
  if (!e) return false;
  if (TRANSIENT_NAMES.has(e.constructor?.name ?? '')) return true;
  if (e.response?.statusCode !== undefined && TRANSIENT_STATUS.has(e.response.statusCode)) return true;
  return TRANSIENT_NETWORK.test(`${String(e.code ?? '')} ${String(e.message ?? '')}`);
}

/**
 * Calls `fn` until it succeeds, retrying transient failures with exponential backoff and full
 * jitter (a random wait between 0 and min(maxMs, baseMs * 2^retry)), so that many clients of a
 * throttled hub do not retry in lockstep. Other errors are thrown at once, unchanged; a transient
 * one that outlasts `attempts` becomes the toolkit's one-line error, saying it gave up.
 */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = DEFAULT_RETRY): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (attempt >= options.attempts) {
        const error = explain(err, options.what);
        error.message += ` (gave up after ${attempt} attempts)`;
        throw error;
      }
      const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
    }
  }
}
