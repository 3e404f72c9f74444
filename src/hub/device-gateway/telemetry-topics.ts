import type { PublishPacket } from 'aedes';
import { hubErrors } from '../errors.js';
import type { D2CMessage, D2CSink } from '../events/event-log.js';
import type { Registry } from '../registry/registry.js';
import { deviceTopicRoot, type DeviceSession, type TopicHandler } from './mqtt-gateway.js';
import type { Throttle } from '../throttling.js';

/** IoT Hub's limit for a device-to-cloud message: body and properties together. */
export const MAX_D2C_MESSAGE_BYTES = 256 * 1024;

const EVENTS = '/messages/events';
const SLASH = 0x2f; // '/'

/** The application property that marks a message a device published with RETAIN set (its value: 'true'). */
const RETAIN_PROPERTY = 'mqtt-retain';

// The system properties a device sets in the property bag, as "Communicate with your IoT hub using
// the MQTT protocol" lists them and azure-iot-device-mqtt writes them; `$.sub` is an IoT Plug and Play
// component's name (the SDK's `dt-subject` property), which IoT Hub passes on as dt-subject. Other `$.`
// keys are not carried into the event log.
const SYSTEM: Record<string, keyof D2CMessage> = {
  '$.mid': 'messageId',
  '$.cid': 'correlationId',
  '$.uid': 'userId',
  '$.ct': 'contentType',
  '$.ce': 'contentEncoding',
  '$.sub': 'component',
  '$.to': 'to',
  '$.exp': 'expiryTime',
  '$.ctime': 'creationTime',
  '$.ifid': 'interfaceId',
};

/**
 * Device-to-cloud messages over MQTT: a device or module publishes (QoS 0 or 1) to
 * {its own root}/messages/events/{property_bag}; the hub stamps who sent it and appends it to the
 * event log before the PUBACK goes out. An oversized or malformed message is refused by closing
 * that client's connection, as IoT Hub does on MQTT.
 */
export class TelemetryTopics implements TopicHandler {
  /**
   * Per connection: its events topic, and its identity's generation id, read once. A generation id
   * changes only when the identity is deleted and created again, and deleting it closes its
   * connections; a registry read per message was the largest cost of the hub's D2C path.
   */
  private readonly senders = new WeakMap<DeviceSession, { events: string; generationId: string | undefined }>();

  constructor(
    private readonly d2c: D2CSink,
    private readonly registry: Registry,
    private readonly throttle?: Throttle,
  ) {}

  publishes(topic: string, session: DeviceSession): boolean {
    const { events } = this.sender(session);
    return topic.startsWith(events) && (topic.length === events.length || topic.charCodeAt(events.length) === SLASH);
  }

  subscribes(): boolean {
    return false;
  }

  handle(session: DeviceSession, packet: PublishPacket): Promise<unknown> {
    // Over its D2C rate the sender is disconnected unacknowledged: the SDK's retry policy resends.
    if (this.throttle && !this.throttle.allow('d2c')) throw hubErrors.throttled('Device-to-cloud messages are throttled for this hub tier');
    const { deviceId, moduleId } = session.key;
    this.registry.recordActivity(session.key);
    const { events, generationId } = this.sender(session);
    const body = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const bag = packet.topic.slice(events.length + 1);
    const message: D2CMessage = {
      deviceId,
      moduleId,
      body,
      properties: {},
      authMethod: session.authMethod,
      authGenerationId: generationId,
      ...(session.modelId ? { modelId: session.modelId } : {}),
    };
    let size = body.length;
    for (const [name, value] of parsePropertyBag(bag)) {
      size += Buffer.byteLength(name) + Buffer.byteLength(value);
      const system = SYSTEM[name];
      if (system) (message as unknown as Record<string, string>)[system] = value;
      else if (!name.startsWith('$.')) message.properties[name] = value;
    }
    // "IoT Hub doesn't persist Retain messages. If a device sends a message with the RETAIN flag set
    // to 1, IoT Hub adds the mqtt-retain application property to the message" and passes it on.
    if (packet.retain) message.properties[RETAIN_PROPERTY] = 'true';
    if (size > MAX_D2C_MESSAGE_BYTES) {
      throw hubErrors.messageTooLarge(
        `The message is ${size} bytes; IoT Hub accepts up to ${MAX_D2C_MESSAGE_BYTES} bytes (body and properties).`,
      );
    }
    // Appended with the other publishes of this moment; the PUBACK waits for the commit.
    return this.d2c.append(message);
  }

  private sender(session: DeviceSession): { events: string; generationId: string | undefined } {
    let sender = this.senders.get(session);
    if (!sender) {
      const { deviceId, moduleId } = session.key;
      sender = { events: deviceTopicRoot(session.key) + EVENTS, generationId: this.registry.find(deviceId, moduleId)?.generationId };
      this.senders.set(session, sender);
    }
    return sender;
  }
}

/** `key=value&key2=value2`, each part URL-encoded (RFC 2396); a key without '=' has an empty value. */
export function parsePropertyBag(bag: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const part of bag.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const [name, value] = eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    try {
      pairs.push([decoded(name), decoded(value)]);
    } catch {
      throw hubErrors.argumentInvalid(`The property bag has a malformed percent-encoding in '${part.slice(0, 40)}'.`);
    }
  }
  return pairs;
}

/** decodeURIComponent, skipped where there is nothing to decode (most names and values). */
function decoded(text: string): string {
  return text.includes('%') ? decodeURIComponent(text) : text;
}
