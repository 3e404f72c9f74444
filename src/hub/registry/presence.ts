import { EventEmitter } from 'node:events';
import type { IdentityKey, Registry } from './registry.js';

/** The transports that hold a connection (HTTPS holds none). */
export type PresenceTransport = 'mqtt' | 'amqp';

/**
 * Whether an identity is connected, across the transports. IoT Hub shows one connectionState per
 * identity, for MQTT and AMQP only (an HTTPS device holds no connection and changes nothing), and an
 * identity may be connected over both at once. Each transport says when an identity arrives on it and
 * when it has gone from it (MQTT: its session; AMQP: its first link of its own and its last); the
 * identity is Connected from its first arrival until it has gone from every transport it arrived on.
 * `changed` is emitted when it flips.
 */
export class Presence extends EventEmitter<{ changed: [IdentityKey] }> {
  /** Per connected identity, the transports it is connected over now. */
  private readonly transports = new Map<string, Set<PresenceTransport>>();

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

  /** How many devices (not modules) are connected now: IoT Hub's connectedDeviceCount. */
  connectedDeviceCount(): number {
    let devices = 0;
    for (const id of this.transports.keys()) if (id.endsWith('/')) devices++; // a device's id has no module part
    return devices;
  }

  /**
   * The identity connected over `transport` (over one it is connected on already, nothing changes but a
   * model id); a model id it announced there becomes its twin's.
   */
  arrived(key: IdentityKey, transport: PresenceTransport, modelId?: string): void {
    const id = presenceId(key);
    const over = this.transports.get(id);
    if (over) over.add(transport);
    else this.transports.set(id, new Set([transport]));
    if (!over || modelId !== undefined) this.registry.setConnectionState(key, true, modelId);
    if (!over) this.emit('changed', key);
  }

  /** A connected identity announced a model id (on a later link of its AMQP connection). */
  announced(key: IdentityKey, modelId: string): void {
    this.registry.setConnectionState(key, true, modelId);
  }

  /** The identity is gone from `transport`; Disconnected once it is gone from all. */
  left(key: IdentityKey, transport: PresenceTransport): void {
    const id = presenceId(key);
    const over = this.transports.get(id);
    if (!over?.delete(transport) || over.size > 0) return;
    this.transports.delete(id);
    this.registry.setConnectionState(key, false);
    this.emit('changed', key);
  }
}

function presenceId(key: IdentityKey): string {
  return `${key.deviceId}/${key.moduleId ?? ''}`;
}
