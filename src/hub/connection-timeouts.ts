// How long a connection may go, at each step, before it has said who it is: IoT Hub's own bounds
// unless the hub is told otherwise (HubOptions.connectionTimeouts: tests prove the bounds with short
// ones instead of waiting seconds).

export interface ConnectionTimeouts {
  /** A TLS handshake at the TLS port. */
  handshakeMs: number;
  /** The first bytes after the handshake, which say MQTT, AMQP or HTTP. */
  firstByteMs: number;
  /** An HTTP request's headers (slowloris). */
  headersMs: number;
  /** An MQTT connection's CONNECT. */
  mqttConnectMs: number;
  /** A token accepted on an AMQP connection's $cbs: Service Bus, Event Hubs and IoT Hub allow 20 s. */
  amqpAuthenticationMs: number;
}

export const DEFAULT_CONNECTION_TIMEOUTS: Readonly<ConnectionTimeouts> = Object.freeze({
  handshakeMs: 10_000,
  firstByteMs: 10_000,
  headersMs: 10_000,
  mqttConnectMs: 10_000,
  amqpAuthenticationMs: 20_000,
});
