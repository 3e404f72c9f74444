import type { Delivery, EventContext, Message, Receiver } from 'rhea';
import { amqpError, bodyBytes, idText } from '../amqp/amqp-values.js';
import { hubErrors } from '../errors.js';
import type { D2CMessage, D2CSink } from '../events/event-log.js';
import type { HubLog } from '../log.js';
import type { Registry } from '../registry/registry.js';
import type { Throttle } from '../throttling.js';
import type { DeviceLink, DeviceLinkHandler } from './amqp-device-links.js';
import { MAX_D2C_MESSAGE_BYTES } from './telemetry-topics.js';

/**
 * Device-to-cloud messages over AMQP: a device or module sends on `.../messages/events`; each message
 * is stamped as MQTT's are (the AMQP properties and annotations azure-iot-device-amqp writes are the
 * ones MQTT carries as `$.` keys) and accepted once it is in the event log, or rejected with IoT Hub's
 * error (over 256 KB: amqp:link:message-size-exceeded, MessageTooLarge). A message left unsettled
 * when the hub stops was never stored as far as the device knows: the SDK sends it again.
 */
export class AmqpTelemetry implements DeviceLinkHandler {
  constructor(
    private readonly d2c: D2CSink,
    private readonly registry: Registry,
    private readonly log: HubLog,
    private readonly throttle?: Throttle,
  ) {}

  fromDevice({ key, link, address, authMethod, modelId }: DeviceLink<Receiver>): void {
    // Read once per link: a generation id changes only when the identity is re-created, which revokes its links.
    const authGenerationId = this.registry.find(key.deviceId, key.moduleId)?.generationId;
    const stamps = {
      deviceId: key.deviceId,
      ...(key.moduleId ? { moduleId: key.moduleId } : {}),
      authMethod,
      authGenerationId,
      ...(modelId ? { modelId } : {}),
    };
    link.on('message', (context: EventContext) => {
      const delivery = context.delivery!;
      try {
        if (this.throttle && !this.throttle.allow('d2c'))
          throw hubErrors.throttled('Device-to-cloud messages are throttled for this hub tier');
        this.registry.recordActivity(key);
        this.d2c.append(d2cMessage(context.message!, stamps, address)).then(
          () => delivery.accept(),
          (error: unknown) => this.refuse(delivery, error),
        );
      } catch (error) {
        this.refuse(delivery, error);
      }
    });
  }

  private refuse(delivery: Delivery, error: unknown): void {
    const refused = amqpError(error);
    if (refused.condition === 'amqp:internal-error')
      this.log.error('amqp', `could not store a device-to-cloud message: ${refused.description}`);
    else this.log.info('amqp', `refused a device-to-cloud message: ${refused.description}`);
    delivery.reject(refused);
  }
}

/**
 * The event an AMQP message makes: its properties as IoT Hub reads them, its application properties
 * as the message's (strings), IoT Plug and Play's annotations; refused over IoT Hub's 256 KB, body and
 * properties together. The `to` the SDK writes on every message (its link's own address) is not carried.
 */
function d2cMessage(message: Message, stamps: Omit<D2CMessage, 'body' | 'properties'>, linkAddress: string): D2CMessage {
  const body = bodyBytes(message.body);
  const annotations = (message.message_annotations ?? {}) as Record<string, unknown>;
  const system: Partial<Record<keyof D2CMessage, string | undefined>> = {
    messageId: idText(message.message_id),
    correlationId: idText(message.correlation_id),
    userId: idText(message.user_id, true),
    contentType: message.content_type,
    contentEncoding: message.content_encoding,
    to: message.to !== undefined && message.to !== linkAddress ? String(message.to) : undefined,
    expiryTime: isoTime(message.absolute_expiry_time),
    creationTime: isoTime(message.creation_time),
    interfaceId: annotations['iothub-interface-id'] === undefined ? undefined : String(annotations['iothub-interface-id']),
    component: annotations['dt-subject'] === undefined ? undefined : String(annotations['dt-subject']),
  };
  const d2c: D2CMessage = { ...stamps, body, properties: {} };
  let size = body.length;
  for (const [name, value] of Object.entries(system)) {
    if (value === undefined) continue;
    (d2c as unknown as Record<string, string>)[name] = value;
    size += Buffer.byteLength(value);
  }
  for (const [name, value] of Object.entries(message.application_properties ?? {})) {
    const text = Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    d2c.properties[name] = text;
    size += Buffer.byteLength(name) + Buffer.byteLength(text);
  }
  if (size > MAX_D2C_MESSAGE_BYTES) {
    throw hubErrors.messageTooLarge(
      `The message is ${size} bytes; IoT Hub accepts up to ${MAX_D2C_MESSAGE_BYTES} bytes (body and properties).`,
    );
  }
  return d2c;
}

/** An AMQP timestamp (a Date, or ms since the epoch) as ISO 8601, as `$.exp` and `$.ctime` carry it. */
function isoTime(value: unknown): string | undefined {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number') return new Date(value).toISOString();
  return undefined;
}
