import { randomUUID } from 'node:crypto';
import { hubErrors } from '../errors.js';
import type { C2dRecord } from '../store/c2d-store.js';
import type { DeviceQueues } from './device-queues.js';

/** IoT Hub's lock timeout: how long a polled message stays invisible to further polls. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

export type Settlement = 'complete' | 'reject' | 'abandon';

/**
 * Cloud-to-device messages received by polling (IoT Hub's HTTPS device API), as "Understand
 * cloud-to-device messaging" has their life cycle: a received message is locked (Invisible: checked
 * out to its lock token, see DeviceQueues) and its delivery counted; the device settles it with the
 * lock token it was given: complete (gone, Success feedback), reject (dead-lettered, Rejected
 * feedback) or abandon (Enqueued again at once). A lock nobody settles within the lock timeout lapses
 * and the message is Enqueued again; a late settlement is refused (412 DeviceMessageLockLost). Locks
 * are held in memory: a restarted hub has none, so what was locked is delivered again, as after a
 * lapsed lock.
 */
export class MessageLocks {
  /** The message each lock token locks (kept until settled; DeviceQueues knows whether it still holds). */
  private readonly locks = new Map<string, { deviceId: string; seq: number }>();

  constructor(
    private readonly queues: DeviceQueues,
    private readonly lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The device's oldest message that is not out, now locked under a new token; undefined when there is none. */
  receive(deviceId: string): { message: C2dRecord; lockToken: string } | undefined {
    for (const [token, lock] of this.locks) if (!this.queues.holds(token, lock.seq)) this.locks.delete(token);
    const lockToken = randomUUID();
    const message = this.queues.checkOut(deviceId, lockToken, this.now() + this.lockTimeoutMs);
    if (!message) return undefined;
    this.locks.set(lockToken, { deviceId, seq: message.seq });
    return { message, lockToken };
  }

  /** Settles the message the device's lock token names; throws 412 DeviceMessageLockLost when it names none (any more). */
  settle(deviceId: string, lockToken: string, settlement: Settlement): void {
    const lock = this.locks.get(lockToken);
    if (lock?.deviceId !== deviceId || !this.queues.holds(lockToken, lock.seq)) {
      throw hubErrors.deviceMessageLockLost(
        `The lock token '${lockToken}' holds no message of device ${deviceId}: its lock timed out, or the message was settled, purged or expired`,
      );
    }
    this.locks.delete(lockToken);
    if (settlement === 'complete') this.queues.complete(lock.seq);
    else if (settlement === 'reject') this.queues.reject(lock.seq);
    else this.queues.release(lockToken);
  }
}
