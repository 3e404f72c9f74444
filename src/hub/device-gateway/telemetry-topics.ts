import type { PublishPacket } from 'aedes';
import { hubErrors } from '../errors.js';
import type { D2CMessage, EventLog } from '../events/event-log.js';
import type { Registry } from '../registry/registry.js';
import { deviceTopicRoot, type DeviceSession, type TopicHandler } from './mqtt-gateway.js';
import { GroupCommit } from './group-commit.js';
import type { Throttle } from '../throttling.js';

/** IoT Hub's limit for a device-to-cloud message: body and properties together. */
export const MAX_D2C_MESSAGE_BYTES = 256 * 1024;

const EVENTS = '/messages/events';

// The system properties a device sets in the property bag, as "Communicate with your IoT hub using
// the MQTT protocol" lists them and azure-iot-device-mqtt writes them. Other `$.` keys ($.to, $.exp,
// $.ctime, $.ifid, $.sub) are not carried into the event log.
const SYSTEM: Record<string, keyof D2CMessage> = {
  '$.mid': 'messageId',
  '$.cid': 'correlationId',
  '$.uid': 'userId',
  '$.ct': 'contentType',
  '$.ce': 'contentEncoding',
};

/**
 * Device-to-cloud messages over MQTT: a device or module publishes (QoS 0 or 1) to
 * {its own root}/messages/events/{property_bag}; the hub stamps who sent it and appends it to the
 * event log before the PUBACK goes out. An oversized or malformed message is refused by closing
 * that client's connection, as IoT Hub does on MQTT.
 */
export class TelemetryTopics implements TopicHandler {
  private readonly commits: GroupCommit<D2CMessage>;

  constructor(
    eventLog: EventLog,
    private readonly registry: Registry,
    private readonly throttle?: Throttle,
  ) {
    this.commits = new GroupCommit((messages) => eventLog.appendMany(messages));
  }

  publishes(topic: string, session: DeviceSession): boolean {
    const events = deviceTopicRoot(session.key) + EVENTS;
    return topic === events || topic.startsWith(`${events}/`);
  }

  subscribes(): boolean {
    return false;
  }

  handle(session: DeviceSession, packet: PublishPacket): Promise<void> {
    // Over its D2C rate the sender is disconnected unacknowledged: the SDK's retry policy resends.
    if (this.throttle && !this.throttle.allow('d2c')) throw hubErrors.throttled('Device-to-cloud messages are throttled for this hub tier');
    const { deviceId, moduleId } = session.key;
    const body = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const bag = packet.topic.slice(deviceTopicRoot(session.key).length + EVENTS.length + 1);
    const message: D2CMessage = {
      deviceId,
      moduleId,
      body,
      properties: {},
      authMethod: 'sas',
      authGenerationId: this.registry.find(deviceId, moduleId)?.generationId,
    };
    let size = body.length;
    for (const [name, value] of parsePropertyBag(bag)) {
      size += Buffer.byteLength(name) + Buffer.byteLength(value);
      const system = SYSTEM[name];
      if (system) (message as unknown as Record<string, string>)[system] = value;
      else if (!name.startsWith('$.')) message.properties[name] = value;
    }
    if (size > MAX_D2C_MESSAGE_BYTES) {
      throw hubErrors.messageTooLarge(`The message is ${size} bytes; IoT Hub accepts up to ${MAX_D2C_MESSAGE_BYTES} bytes (body and properties).`);
    }
    return this.commits.add(message);
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
      pairs.push([decodeURIComponent(name), decodeURIComponent(value)]);
    } catch {
      throw hubErrors.argumentInvalid(`The property bag has a malformed percent-encoding in '${part.slice(0, 40)}'.`);
    }
  }
  return pairs;
}
