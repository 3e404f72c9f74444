import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import { parseConnectionString } from './connection-string.js';
import { hubAgent } from './hub-transport.js';
import type { HubConnection } from './service-clients.js';

export type DeviceClient = deviceSdk.Client;
export type DeviceProtocol = 'mqtt' | 'mqttws';

/** The answer to a direct method the app registered no handler for. */
export interface UnknownMethodAnswer {
  status: number;
  payload: unknown;
}

/**
 * The SDK's MQTT transport, answering calls to methods nobody registered. azure-iot-device has no
 * catch-all method handler (Python's on_method_request_received), and unanswered calls would
 * leave the caller waiting for its timeout. The transport emits method_<name> for each call.
 */
function answeringUnknownMethods(Transport: typeof mqttTransport.Mqtt, answer: UnknownMethodAnswer): typeof mqttTransport.Mqtt {
  return class extends Transport {
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (typeof event === 'string' && event.startsWith('method_') && this.listenerCount(event) === 0) {
        const { requestId } = args[0] as { requestId: string };
        this.sendMethodResponse({ requestId, ...answer } as Parameters<typeof this.sendMethodResponse>[0], () => {});
        return true;
      }
      return super.emit(event, ...args);
    }
  };
}

/**
 * An azure-iot-device client over MQTT (or MQTT over WebSockets). For a local hub, the SDK's own
 * GatewayHostName setting points MQTT at the hub's port, and the CA is passed with setOptions.
 */
export async function createDeviceClient(
  connection: HubConnection,
  protocol: DeviceProtocol = 'mqtt',
  options: { unknownMethod?: UnknownMethodAnswer } = {},
): Promise<DeviceClient> {
  const fields = parseConnectionString(connection.connectionString, 'device');
  const { transport } = connection;
  let connectionString = connection.connectionString;
  if (transport.port !== undefined && protocol === 'mqtt' && !fields.GatewayHostName) {
    connectionString += `;GatewayHostName=${fields.HostName}:${transport.port}`;
  }
  const Base = protocol === 'mqttws' ? mqttTransport.MqttWs : mqttTransport.Mqtt;
  const Transport = options.unknownMethod ? answeringUnknownMethods(Base, options.unknownMethod) : Base;
  const client = fields.ModuleId
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
