import { duplexPair } from 'node:stream';
import mqtt from 'mqtt';
import { openDatabase } from '../../src/hub/store/database.js';
import { IdentityStore } from '../../src/hub/store/identity-store.js';
import { SessionStore } from '../../src/hub/store/session-store.js';
import { Authenticator } from '../../src/hub/auth/authenticator.js';
import { Registry } from '../../src/hub/registry/registry.js';
import { MqttGateway } from '../../src/hub/device-gateway/mqtt-gateway.js';
import { createLog } from '../../src/hub/log.js';
import { connackOf } from './mqtt.js';

export interface MemoryGateway {
  gateway: MqttGateway;
  registry: Registry;
  /** The gateway's log lines. */
  lines: string[];
  /**
   * An MQTT 3.1.1 client (the `mqtt` package) connected over an in-memory duplex: resolves with the
   * client, or with the CONNACK code of a refused connect.
   */
  connect(clientId: string, username: string, password: string): Promise<mqtt.MqttClient | number>;
  close(): Promise<void>;
}

/**
 * The MQTT gateway without sockets or TLS, as aedes's own tests drive it: its broker, the
 * authenticator and the registry on an in-memory store, and clients over in-memory duplexes. For the
 * gateway's connect, topic and auth rules; the user flows keep the real hub over TLS.
 */
export async function memoryGateway(): Promise<MemoryGateway> {
  const db = openDatabase(':memory:');
  const identities = new IdentityStore(db);
  const lines: string[] = [];
  const gateway = new MqttGateway(
    new Authenticator('localhost', identities),
    new SessionStore(db),
    undefined,
    createLog('debug', (line) => lines.push(line)),
  );
  await gateway.start();
  const clients: mqtt.MqttClient[] = [];
  return {
    gateway,
    registry: new Registry(identities, { created: () => undefined, deleted: () => undefined }),
    lines,
    connect(clientId, username, password) {
      const [hubSide, clientSide] = duplexPair();
      gateway.handle(hubSide);
      const client = new mqtt.MqttClient(() => clientSide, {
        clientId,
        username,
        password,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      });
      clients.push(client);
      return connackOf(client);
    },
    async close() {
      for (const client of clients) client.end(true);
      await gateway.close();
      db.close();
    },
  };
}
