// The local hub's defaults that the CLI shows too, in one place (and a module light enough for --help).

/** The TLS port for REST, MQTT and MQTT over WebSockets: IoT Hub's MQTT port, which needs no root. */
export const DEFAULT_PORT = 8883;

/** The plain-AMQP port of the Event Hub-compatible endpoint, as Microsoft's Event Hubs emulator serves it. */
export const DEFAULT_EVENT_HUB_PORT = 5672;
