import { createRequire } from 'node:module';
import type iothub from 'azure-iothub';
import { hubAgent } from './hub-transport.js';
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
    client.setOptions = (options: { http?: object }) => setOptions({ ...options, ca: connection.transport.ca, http: { ...options.http, agent } });
    client.setOptions({});
  }
  return { client, config };
}

export function createRegistry(connection: ServiceConnection): iothub.Registry {
  const { client, config } = restApiClient(connection);
  return new Registry(config as unknown as ConstructorParameters<typeof Registry>[0], client as unknown as ConstructorParameters<typeof Registry>[1]);
}

/** azure-iothub's JobClient (scheduled jobs over REST), on the same REST client as the registry. */
export function createJobClient(connection: ServiceConnection): iothub.JobClient {
  const { JobClient } = require('azure-iothub/dist/job_client.js') as Pick<typeof iothub, 'JobClient'>;
  return new JobClient(restApiClient(connection).client as unknown as ConstructorParameters<typeof JobClient>[0]);
}

/** A retry policy that never retries (the shape of azure-iot-common's RetryPolicy). */
const NO_RETRY = { shouldRetry: () => false, nextRetryTimeout: () => 0 };

/**
 * azure-iothub's service Client, for direct methods (REST). Its transport is the SDK's default,
 * AMQP, which connects only for the calls that need it (cloud-to-device messages). The SDK's own
 * retry policy would retry a throttled call for up to 4 minutes; the apps retry with the toolkit's
 * bounded policy (retry.ts) instead.
 */
export function createServiceClient(connection: ServiceConnection): iothub.Client {
  const { Client } = require('azure-iothub/dist/client.js') as Pick<typeof iothub, 'Client'>;
  const { Amqp } = require('azure-iothub/dist/amqp.js') as Pick<typeof iothub, 'Amqp'>;
  const { client, config } = restApiClient(connection);
  const transport = new Amqp(config as unknown as ConstructorParameters<typeof Amqp>[0]);
  const service = new Client(transport, client as unknown as ConstructorParameters<typeof Client>[1]);
  service.setRetryPolicy(NO_RETRY);
  return service;
}
