import './os-release.js'; // before any Azure SDK
import { createRequire } from 'node:module';
import type iothub from 'azure-iothub';
import { hubAgent, type HubTransport } from './hub-transport.js';
import type { ServiceConnection } from './connection-string.js';

// azure-iothub builds its REST client itself and pins a plain https agent on it; passing our own
// RestApiClient (the constructor's documented second argument) is how the hub's CA and port get in.
const require = createRequire(import.meta.url);
const { RestApiClient } = require('azure-iothub/dist/common-http/rest_api_client.js') as {
  RestApiClient: new (config: object, userAgent: string) => { setOptions(options: object): void };
};
const { SharedAccessSignature } = require('azure-iothub/dist/common-core/shared_access_signature.js') as {
  SharedAccessSignature: { create(sr: string, keyName: string, key: string, expiry: number): { toString(): string } };
};
// The registry's own module: azure-iothub's index also loads the AMQP stack and the digital-twin
// client, which doubled create-device's start-up.
const { Registry } = require('azure-iothub/dist/registry.js') as Pick<typeof iothub, 'Registry'>;
const USER_AGENT = 'iothub-tut (azure-iothub)';

/** The REST client azure-iothub uses, with the transport's CA and port applied to every request. */
export function restApiClient(connection: ServiceConnection) {
  const { hostName, keyName, key } = connection;
  const config = {
    host: hostName,
    // The REST client never renews its token: one valid for a day outlives any command.
    sharedAccessSignature: SharedAccessSignature.create(hostName, keyName, key, Math.ceil(Date.now() / 1000) + 86400).toString(),
    keyName,
  };
  const client = new RestApiClient(config, USER_AGENT);
  const local = connection.transport.port !== undefined || connection.transport.ca !== undefined;
  if (local) {
    const agent = hubAgent(connection.transport);
    const setOptions = client.setOptions.bind(client);
    client.setOptions = (options: { http?: object }) =>
      setOptions({ ...options, ca: connection.transport.ca, http: { ...options.http, agent } });
    client.setOptions({});
  }
  return { client, config };
}

export function createRegistry(connection: ServiceConnection): iothub.Registry {
  const { client, config } = restApiClient(connection);
  return new Registry(
    config as unknown as ConstructorParameters<typeof Registry>[0],
    client as unknown as ConstructorParameters<typeof Registry>[1],
  );
}

/** azure-iothub's JobClient (scheduled jobs over REST), on the same REST client as the registry. */
export function createJobClient(connection: ServiceConnection): iothub.JobClient {
  const { JobClient } = require('azure-iothub/dist/job_client.js') as Pick<typeof iothub, 'JobClient'>;
  return new JobClient(restApiClient(connection).client as unknown as ConstructorParameters<typeof JobClient>[0]);
}

/** A direct method's name, payload and timeouts, as IoT Hub's REST API takes them. */
export type MethodParams = ConstructorParameters<typeof import('azure-iothub/dist/device_method.js').DeviceMethod>[0];

/**
 * Invokes direct methods over REST, as azure-iothub's Client.invokeDeviceMethod does (with no retry
 * policy), through the same DeviceMethod class: the Client's module also loads its AMQP transport
 * (rhea, about 130 modules, 0.1 CPU-second) that a REST call never uses. Resolves to the device's answer.
 */
export function createMethodInvoker(connection: ServiceConnection) {
  const { DeviceMethod } = require('azure-iothub/dist/device_method.js') as typeof import('azure-iothub/dist/device_method.js');
  const { client } = restApiClient(connection);
  return async (deviceId: string, moduleId: string | undefined, params: MethodParams): Promise<unknown> => {
    const method = new DeviceMethod({ ...params }, client as unknown as ConstructorParameters<typeof DeviceMethod>[1]);
    return (await (moduleId ? method.invokeOnModule(deviceId, moduleId) : method.invokeOn(deviceId))).device;
  };
}

/** A cloud-to-device message: azure-iothub's own copy of azure-iot-common's Message (loading azure-iot-device for it costs about 0.1 CPU-second). */
export function serviceMessage(data: string) {
  const { Message } = require('azure-iothub/dist/common-core/message.js') as typeof import('azure-iothub/dist/common-core/message.js');
  return new Message(data);
}

/** A retry policy that never retries (the shape of azure-iot-common's RetryPolicy). */
const NO_RETRY = { shouldRetry: () => false, nextRetryTimeout: () => 0 };

/** How the service Client carries cloud-to-device messages and feedback: AMQPS (5671), or AMQP over WebSockets (443). */
export type ServiceProtocol = 'amqp' | 'amqpWs';

/**
 * azure-iothub's service Client: cloud-to-device messages and their feedback over AMQP (connected
 * only for the calls that need it). The SDK's own retry policy would retry a throttled call for up
 * to 4 minutes; the apps retry with the toolkit's bounded policy (retry.ts) instead.
 */
export function createServiceClient(connection: ServiceConnection, protocol: ServiceProtocol = 'amqp'): iothub.Client {
  const { Client } = require('azure-iothub/dist/client.js') as Pick<typeof iothub, 'Client'>;
  const Transport =
    protocol === 'amqpWs'
      ? (require('azure-iothub/dist/amqp_ws.js') as Pick<typeof iothub, 'AmqpWs'>).AmqpWs
      : (require('azure-iothub/dist/amqp.js') as Pick<typeof iothub, 'Amqp'>).Amqp;
  const { client, config } = restApiClient(connection);
  // The AMQP transport renews its own token; it gets one from the key, as Client.fromConnectionString makes it.
  const amqpConfig = {
    ...config,
    sharedAccessSignature: SharedAccessSignature.create(
      connection.hostName,
      connection.keyName,
      connection.key,
      Math.ceil(Date.now() / 1000) + 3600,
    ),
  };
  const transport = new Transport(amqpConfig as unknown as ConstructorParameters<typeof Transport>[0]);
  if (connection.transport.port !== undefined || connection.transport.ca !== undefined) pointAmqpAtHub(transport, connection.transport);
  const service = new Client(transport, client as unknown as ConstructorParameters<typeof Client>[1]);
  service.setRetryPolicy(NO_RETRY);
  return service;
}

/**
 * azure-iothub's AMQP transports dial amqps://{host}:5671 or wss://{host}:443/$iothub/websocket and
 * take no TLS options; the AMQP client beneath them does (sslOptions, the port of the URI): the hub's
 * CA and port are applied there.
 */
function pointAmqpAtHub(transport: object, hub: HubTransport): void {
  type Connect = (config: { uri: string; sslOptions?: object }, done: unknown) => void;
  const base = (transport as { _amqp: { connect: Connect } })._amqp;
  const connect = base.connect.bind(base);
  base.connect = (config, done) => {
    const uri = new URL(config.uri);
    if (hub.port !== undefined) uri.port = String(hub.port);
    connect({ ...config, uri: uri.toString(), sslOptions: { ...config.sslOptions, ...(hub.ca ? { ca: hub.ca } : {}) } }, done);
  };
}
