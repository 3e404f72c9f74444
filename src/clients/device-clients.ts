import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import { parseConnectionString } from './connection-string.js';
import { hubAgent } from './hub-transport.js';
import type { HubConnection } from './service-clients.js';

export type DeviceClient = deviceSdk.Client;
export type DeviceProtocol = 'mqtt' | 'mqttws';

/** A device or module connection string, built as the portal shows it. */
export function deviceConnectionString(hostName: string, deviceId: string, key: string, moduleId?: string): string {
  return `HostName=${hostName};DeviceId=${deviceId};${moduleId ? `ModuleId=${moduleId};` : ''}SharedAccessKey=${key}`;
}

/**
 * An azure-iot-device client over MQTT (or MQTT over WebSockets). For a local hub, the SDK's own
 * GatewayHostName setting points MQTT at the hub's port, and the CA is passed with setOptions.
 */
export async function createDeviceClient(connection: HubConnection, protocol: DeviceProtocol = 'mqtt'): Promise<DeviceClient> {
  const fields = parseConnectionString(connection.connectionString, 'device');
  const { transport } = connection;
  let connectionString = connection.connectionString;
  if (transport.port !== undefined && protocol === 'mqtt' && !fields.GatewayHostName) {
    connectionString += `;GatewayHostName=${fields.HostName}:${transport.port}`;
  }
  const Transport = protocol === 'mqttws' ? mqttTransport.MqttWs : mqttTransport.Mqtt;
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
