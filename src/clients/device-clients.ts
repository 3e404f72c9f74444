import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import type { DeviceConnection } from './connection-string.js';
import { ExitCode, ToolkitError } from './errors.js';
import { hubAgent } from './hub-transport.js';

export type DeviceClient = deviceSdk.Client;
export type DeviceProtocol = 'mqtt' | 'mqttws';

/** The answer to a direct method the app registered no handler for. */
export interface UnknownMethodAnswer {
  status: number;
  payload: unknown;
}

export interface DeviceClientOptions {
  /** Answer calls to methods nobody registered with this (else the caller waits for its timeout). */
  unknownMethod?: UnknownMethodAnswer;
  /** Called each time the SDK's subscription to direct methods is in place (or has failed). */
  onMethodsEnabled?: (err?: Error) => void;
}

/**
 * The SDK's MQTT transport, with what the client itself has no API for. azure-iot-device has no
 * catch-all method handler (Python's on_method_request_received): the transport emits
 * method_<name> for each call, and one nobody listens to is answered here. Nor does it tell when
 * its method subscription is in place (onDeviceMethod subscribes in the background).
 */
function withMethodHooks(Transport: typeof mqttTransport.Mqtt, options: DeviceClientOptions): typeof mqttTransport.Mqtt {
  const { unknownMethod, onMethodsEnabled } = options;
  return class extends Transport {
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (unknownMethod && typeof event === 'string' && event.startsWith('method_') && this.listenerCount(event) === 0) {
        const { requestId } = args[0] as { requestId: string };
        this.sendMethodResponse({ requestId, ...unknownMethod } as Parameters<typeof this.sendMethodResponse>[0], () => {});
        return true;
      }
      return super.emit(event, ...args);
    }

    override enableMethods(callback: (err?: Error) => void): void {
      super.enableMethods((err?: Error) => {
        onMethodsEnabled?.(err);
        callback(err);
      });
    }
  };
}

/**
 * An azure-iot-device client over MQTT (or MQTT over WebSockets). For a local hub, the SDK's own
 * GatewayHostName setting points MQTT at the hub's port, and the CA is passed with setOptions.
 */
export async function createDeviceClient(
  connection: DeviceConnection,
  protocol: DeviceProtocol = 'mqtt',
  options: DeviceClientOptions = {},
): Promise<DeviceClient> {
  const { transport } = connection;
  let connectionString = connection.connectionString;
  if (transport.port !== undefined && protocol === 'mqtt' && !connection.gatewayHostName) {
    connectionString += `;GatewayHostName=${connection.hostName}:${transport.port}`;
  }
  const Base = protocol === 'mqttws' ? mqttTransport.MqttWs : mqttTransport.Mqtt;
  const Transport = options.unknownMethod || options.onMethodsEnabled ? withMethodHooks(Base, options) : Base;
  const client = connection.moduleId
    ? deviceSdk.ModuleClient.fromConnectionString(connectionString, Transport)
    : deviceSdk.Client.fromConnectionString(connectionString, Transport);
  if (transport.ca || transport.port !== undefined) {
    await client.setOptions({
      ca: transport.ca,
      ...(protocol === 'mqttws' ? { mqtt: { webSocketAgent: hubAgent(transport) } } : {}),
    });
  }
  return client as DeviceClient;
}

/** How long a first connection may take, retries included. */
const OPEN_TIMEOUT_MS = 20_000;

/**
 * Opens a device client within a bound. The SDK's retry policy retries a connection the hub
 * refuses as busy (CONNACK 3, throttled) for up to 4 minutes, in silence; this gives up sooner
 * with the toolkit's "busy" error (exit 8), naming `what` was connecting. Resolves false when
 * `signal` aborts first (Ctrl-C while connecting); the caller closes the client either way.
 */
export async function openClient(client: DeviceClient, what: string, signal?: AbortSignal): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort = () => {};
  const cut = new Promise<boolean>((resolve, reject) => {
    timer = setTimeout(
      () => reject(new ToolkitError(`${what}: not connected within ${OPEN_TIMEOUT_MS / 1000} s: the hub is busy or unreachable; try again shortly.`, ExitCode.unavailable)),
      OPEN_TIMEOUT_MS,
    );
    onAbort = () => resolve(false);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([client.open().then(() => true), cut]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
