// The local hub's defaults that the CLI shows too, in one place (and a module light enough for --help).

/** The TLS port for REST, MQTT and MQTT over WebSockets: IoT Hub's MQTT port, which needs no root. */
export const DEFAULT_PORT = 8883;

/** The plain-AMQP port of the Event Hub-compatible endpoint, as Microsoft's Event Hubs emulator serves it. */
export const DEFAULT_EVENT_HUB_PORT = 5672;

/**
 * Where `hub start --standard-ports` listens: IoT Hub's own ports, which the SDKs dial when a connection
 * string names no port. Each is a TLS listener that tells its protocols apart by the first bytes, as the
 * one-port mode's; `serves` says what IoT Hub serves there.
 */
export const STANDARD_PORTS: ReadonlyArray<{ port: number; serves: string }> = [
  { port: 8883, serves: 'MQTT' },
  { port: 443, serves: 'HTTPS REST, MQTT and AMQP over WebSockets' },
  { port: 5671, serves: 'AMQPS' },
];

/** The container `hub start --file-upload` puts uploads in, unless --file-upload-container names another. */
export const DEFAULT_UPLOAD_CONTAINER = 'uploads';

/** Where a hub with file upload writes a certificate for the storage emulator, and its key, in its data dir's tls/. */
export const STORAGE_CERT_FILE = 'storage.pem';
export const STORAGE_KEY_FILE = 'storage-key.pem';
