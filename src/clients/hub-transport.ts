import { Agent } from 'node:https';
import { connect, type ConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';

/**
 * The only things the toolkit needs to know about a local hub: the CA that signed its certificate
 * and the port it serves on (the SDKs assume 443). For Azure both are undefined.
 */
export interface HubTransport {
  ca?: string;
  port?: number;
}

/** True for a local hub's transport (its CA or its port given); a real IoT Hub needs neither. */
export function isLocalHub(transport: HubTransport): boolean {
  return transport.ca !== undefined || transport.port !== undefined;
}

/** An https agent that trusts the hub's CA and sends the SDK's port-443 connections to the hub's port. */
export function hubAgent(transport: HubTransport): Agent {
  return new (class extends Agent {
    override createConnection(options: ConnectionOptions): Duplex {
      return connect({ ...options, port: transport.port ?? options.port, ca: transport.ca ?? options.ca });
    }
  })({ keepAlive: true });
}
