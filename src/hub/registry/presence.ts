import { EventEmitter } from 'node:events';
import type { IdentityKey, Registry } from './registry.js';

/**
 * Whether an identity is connected, across the transports. IoT Hub shows one connectionState per
 * identity, for MQTT and AMQP only (an HTTPS device holds no connection and changes nothing), and an
 * identity may be connected over both at once. Each transport says when an identity arrives on it and
 * when it has gone from it (MQTT: its session; AMQP: its first link of its own and its last); the
 * identity is Connected from its first arrival until it has gone from every transport. `changed` is
 * emitted when it flips.
 */
export class Presence extends EventEmitter<{ changed: [IdentityKey] }> {
  /** Per identity, on how many transports it is connected now. */
  private readonly transports = new Map<string, number>();

  constructor(private readonly registry: Registry) {
    super();
  }

  /** Whether the identity is connected now, over any transport. */
  isConnected(key: IdentityKey): boolean {
    return this.transports.has(presenceId(key));
  }

  /** How many identities are connected now. */
  connectedCount(): number {
    return this.transports.size;
  }

  /** The identity connected over one more transport; a model id it announced there becomes its twin's. */
  arrived(key: IdentityKey, modelId?: string): void {
    const id = presenceId(key);
    const count = (this.transports.get(id) ?? 0) + 1;
    this.transports.set(id, count);
    if (count === 1 || modelId !== undefined) this.registry.setConnectionState(key, true, modelId);
    if (count === 1) this.emit('changed', key);
  }

  /** A connected identity announced a model id (on a later link of its AMQP connection). */
  announced(key: IdentityKey, modelId: string): void {
    this.registry.setConnectionState(key, true, modelId);
  }

  /** The identity is gone from one transport; Disconnected once it is gone from all. */
  left(key: IdentityKey): void {
    const id = presenceId(key);
    const count = (this.transports.get(id) ?? 1) - 1;
    if (count > 0) return void this.transports.set(id, count);
    this.transports.delete(id);
    this.registry.setConnectionState(key, false);
    this.emit('changed', key);
  }
}

function presenceId(key: IdentityKey): string {
  return `${key.deviceId}/${key.moduleId ?? ''}`;
}
