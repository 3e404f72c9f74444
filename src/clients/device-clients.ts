import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import type { DeviceConnection } from './connection-string.js';
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
