import type { DeviceClient } from './device-clients.js';

/**
 * Calls `listener` each time the SDK has reconnected a client whose connection dropped. The SDK's
 * default retry policy (exponential back-off with jitter, up to its 4-minute operation timeout)
 * does the reconnecting, for a pending send or to restore its method and twin subscriptions; it
 * emits 'connect' on every connection, the first (open) included, which is not a reconnect.
 * Register before `open()`.
 */
export function onReconnect(client: DeviceClient, listener: () => void): void {
  let opened = false;
  client.on('connect', () => (opened ? listener() : (opened = true)));
}
