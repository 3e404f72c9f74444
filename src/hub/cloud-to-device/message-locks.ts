import { randomUUID } from 'node:crypto';
import { hubErrors } from '../errors.js';
import type { C2dRecord } from '../store/c2d-store.js';
import type { DeviceQueues } from './device-queues.js';

/** IoT Hub's lock timeout: how long a polled message stays invisible to further polls. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

export type Settlement = 'complete' | 'reject' | 'abandon';

interface Lock {
  deviceId: string;
  seq: number;
  untilMs: number;
}

/**
 * Cloud-to-device messages received by polling (IoT Hub's HTTPS device API), as "Understand
 * cloud-to-device messaging" has their life cycle: a received message is locked (Invisible) and its
 * delivery counted; the device settles it with the lock token it was given: complete (gone, Success
 * feedback), reject (dead-lettered, Rejected feedback) or abandon (Enqueued again at once). A lock
 * nobody settles within the lock timeout lapses and the message is Enqueued again; a late settlement
 * is refused (412 DeviceMessageLockLost). Locks are held in memory: a restarted hub has none, so
 * what was locked is delivered again, as after a lapsed lock.
 */
export class MessageLocks {
  /** By lock token. */
  private readonly locks = new Map<string, Lock>();

  constructor(
    private readonly queues: DeviceQueues,
    private readonly lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The device's oldest message that is not locked, now locked under a new token; undefined when there is none. */
  receive(deviceId: string): { message: C2dRecord; lockToken: string } | undefined {
    const nowMs = this.now();
    const locked = new Set<number>();
    for (const [token, lock] of this.locks) {
      if (lock.untilMs <= nowMs) this.locks.delete(token);
      else if (lock.deviceId === deviceId) locked.add(lock.seq);
    }
    for (const { seq } of this.queues.pending(deviceId)) {
      if (locked.has(seq)) continue;
      const message = this.queues.startDelivery(seq); // undefined once delivered the maximum number of times: dead-lettered
      if (!message) continue;
      const lockToken = randomUUID();
      this.locks.set(lockToken, { deviceId, seq, untilMs: nowMs + this.lockTimeoutMs });
      return { message, lockToken };
    }
    return undefined;
  }

  /** Settles the message the device's lock token names; throws 412 DeviceMessageLockLost when it names none (any more). */
  settle(deviceId: string, lockToken: string, settlement: Settlement): void {
    const lock = this.locks.get(lockToken);
    const held = lock?.deviceId === deviceId && lock.untilMs > this.now() && this.queues.pending(deviceId).some((m) => m.seq === lock.seq);
    if (!held) {
      throw hubErrors.deviceMessageLockLost(
        `The lock token '${lockToken}' holds no message of device ${deviceId}: its lock timed out, or the message was settled, purged or expired`,
      );
    }
    this.locks.delete(lockToken);
    if (settlement === 'complete') this.queues.complete(lock.seq);
    else if (settlement === 'reject') this.queues.reject(lock.seq);
  }
}
