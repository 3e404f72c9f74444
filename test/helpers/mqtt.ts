import mqtt from 'mqtt';
import { createSasToken } from '../../src/hub/auth/sas-token.js';

export interface RawIdentity {
  deviceId: string;
  moduleId?: string;
}

/** A device or module SAS token as the SDKs build it: sr is the identity's resource, signed with `key`. */
export function deviceToken(identity: RawIdentity, key: string, options: { host?: string; ttlSeconds?: number } = {}): string {
  const path = `${options.host ?? 'localhost'}/devices/${identity.deviceId}${identity.moduleId ? `/modules/${identity.moduleId}` : ''}`;
  return createSasToken(path, key, undefined, options.ttlSeconds ?? 600);
}

/** Where the hub listens: a LocalHub, or what a `hub start --json` line tells. */
export interface HubAddress {
  port: number;
  tls: { ca: string };
}

/**
 * Connects a raw MQTT 3.1.1 client over TLS as IoT Hub expects it (client id, username), with the
 * given password. Resolves with the client, or with the CONNACK return code of a refused connect.
 */
export function rawConnect(hub: HubAddress, identity: RawIdentity, password: string): Promise<mqtt.MqttClient | number> {
  return connackOf(rawClient(hub, identity, password));
}

/** Resolves with the client once it is connected, or with the CONNACK return code of a refused connect. */
export function connackOf(client: mqtt.MqttClient): Promise<mqtt.MqttClient | number> {
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err: Error & { code?: number }) => {
      client.end(true);
      if (typeof err.code === 'number') resolve(err.code);
      else reject(err);
    });
  });
}

/** A raw MQTT 3.1.1 client, connecting (not awaited), over TLS or, with webSocket, over WebSockets on IoT Hub's path. */
export function rawClient(
  hub: HubAddress,
  identity: RawIdentity,
  password: string,
  options: { webSocket?: boolean } = {},
): mqtt.MqttClient {
  const clientId = identity.moduleId ? `${identity.deviceId}/${identity.moduleId}` : identity.deviceId;
  return mqtt.connect({
    protocol: options.webSocket ? 'wss' : 'mqtts',
    path: '/$iothub/websocket', // the path serves WebSockets only
    host: '127.0.0.1',
    port: hub.port,
    ca: hub.tls.ca,
    servername: 'localhost',
    clientId,
    username: `localhost/${clientId}/?api-version=2021-04-12`,
    password,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
  } as mqtt.IClientOptions);
}

/** Resolves when the client's connection closes; rejects after `timeoutMs` (bounded wait). */
export function closed(client: mqtt.MqttClient, timeoutMs = 30_000): Promise<void> {
  if (!client.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the connection was not closed')), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Subscribes at `qos`; resolves with the QoS granted to each filter. */
export function subscribe(client: mqtt.MqttClient, filters: string[], qos: mqtt.QoS = 0): Promise<number[]> {
  return new Promise((resolve, reject) =>
    client.subscribe(filters, { qos }, (err, granted) => (err ? reject(err) : resolve(granted.map((g) => g.qos)))),
  );
}
