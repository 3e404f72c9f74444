import common from 'azure-iot-common';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { IClientOptions } from 'mqtt';

const { SharedAccessSignature, encodeUriComponentStrict } = common;

/**
 * One key for every benchmark device (given at registration), so that load processes can sign
 * their own tokens without reading keys back from the registry.
 */
export const BENCH_DEVICE_KEY = Buffer.from('iothub-tut benchmark device key!').toString('base64');

/** A device SAS token, made the way azure-iot-device makes it. */
export function deviceToken(hostName: string, deviceId: string, ttlSeconds = 3600): string {
  const resource = encodeUriComponentStrict(`${hostName}/devices/${deviceId}`);
  return SharedAccessSignature.create(
    resource,
    undefined as unknown as string,
    BENCH_DEVICE_KEY,
    Math.ceil(Date.now() / 1000) + ttlSeconds,
  ).toString();
}

export interface MqttTarget {
  hostName: string;
  port: number;
  ca: string;
}

// One TLS context per process: a `ca` option on each connect would parse the CA again every time,
// a cost of the client, not of the hub.
const contexts = new Map<string, SecureContext>();
function secureContextFor(ca: string): SecureContext {
  let context = contexts.get(ca);
  if (!context) contexts.set(ca, (context = createSecureContext({ ca })));
  return context;
}

/** Raw `mqtt` connect options as the SDK sends them: TLS, client id = device id, IoT Hub's username and a SAS password. */
export function deviceMqttOptions(target: MqttTarget, deviceId: string): IClientOptions & { secureContext: SecureContext } {
  return {
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: target.port,
    secureContext: secureContextFor(target.ca),
    clientId: deviceId,
    username: `${target.hostName}/${deviceId}/?api-version=2021-04-12`,
    password: deviceToken(target.hostName, deviceId),
    protocolVersion: 4,
    clean: false,
    keepalive: 240,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
  };
}

export function benchDeviceId(run: string, index: number): string {
  return `bench-${run}-${index}`;
}
