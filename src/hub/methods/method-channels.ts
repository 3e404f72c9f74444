import type { IdentityKey } from '../registry/registry.js';
import type { MethodChannel } from './direct-methods.js';

/**
 * Direct methods over every device transport at once (MQTT, AMQP): an identity listens on
 * whichever it connected with, and its calls go there.
 */
export class MethodChannels implements MethodChannel {
  private readonly channels: MethodChannel[];

  constructor(...channels: MethodChannel[]) {
    this.channels = channels;
  }

  isListening(key: IdentityKey): boolean {
    return this.channels.some((channel) => channel.isListening(key));
  }

  /** True as soon as the identity listens on any transport; false when none did in time (or on abort). */
  async whenListening(key: IdentityKey, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    // Every transport's wait ends with the caller's abort, or once the first has answered true.
    const settled = new AbortController();
    const either = AbortSignal.any([signal, settled.signal]);
    try {
      const waits = this.channels.map((channel) =>
        channel.whenListening(key, timeoutMs, either).then((listening) => listening || Promise.reject(new Error('not listening'))),
      );
      return await Promise.any(waits).then(
        () => true,
        () => false,
      );
    } finally {
      settled.abort();
    }
  }

  deliver(key: IdentityKey, methodName: string, rid: string, payload: unknown): Promise<void> {
    const channel = this.channels.find((c) => c.isListening(key));
    return channel ? channel.deliver(key, methodName, rid, payload) : Promise.reject(new Error('not listening'));
  }
}
