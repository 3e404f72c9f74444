import rhea, { type Message } from 'rhea';
import type { PartitionInfo, StoredEvent } from './event-log.js';

/**
 * An event as an Event Hubs receiver gets it: the device's body as a data section, its message and
 * application properties, IoT Hub's iothub-* stamps and Event Hubs' x-opt-* position as message
 * annotations (which the SDK shows as `systemProperties`, apart from the x-opt-* it lifts out).
 * With `runtime` (the receiver asked for com.microsoft:enable-receiver-runtime-metric) the partition's
 * last enqueued event rides along as delivery annotations.
 */
export function toAmqpMessage(event: StoredEvent, runtime?: PartitionInfo): Message {
  const enqueuedTime = new Date(event.enqueuedTimeMs);
  const { messageId, correlationId, contentType, contentEncoding, userId } = event.systemProperties;
  const message: Message = {
    body: rhea.message.data_section(event.body),
    application_properties: event.properties,
    message_annotations: {
      ...event.annotations,
      'iothub-enqueuedtime': enqueuedTime,
      'x-opt-sequence-number': rhea.types.wrap_long(event.sequenceNumber),
      'x-opt-offset': event.offset,
      'x-opt-enqueued-time': enqueuedTime,
    },
  };
  if (messageId !== undefined) message.message_id = messageId;
  if (correlationId !== undefined) message.correlation_id = correlationId;
  if (contentType !== undefined) message.content_type = contentType;
  if (contentEncoding !== undefined) message.content_encoding = contentEncoding;
  // AMQP's user-id is binary; rhea's typings say string but it encodes a Buffer as binary.
  if (userId !== undefined) message.user_id = Buffer.from(userId) as unknown as string;
  if (runtime) {
    message.delivery_annotations = {
      last_enqueued_sequence_number: rhea.types.wrap_long(runtime.lastSequenceNumber),
      last_enqueued_offset: runtime.lastOffset,
      last_enqueued_time_utc: new Date(runtime.lastEnqueuedTimeMs),
      runtime_info_retrieval_time_utc: new Date(),
    };
  }
  return message;
}

/** Encoded messages of events without per-receiver parts, shared by every receiver of the event. */
const encoded = new WeakMap<StoredEvent, Buffer>();

/**
 * `toAmqpMessage` encoded for the wire, as `Sender.send(payload, undefined, 0)` takes it. Without
 * `runtime` nothing in it depends on the receiver, so an event held in the log's in-memory tail is
 * encoded once however many consumer groups read it.
 */
export function encodeAmqpMessage(event: StoredEvent, runtime?: PartitionInfo): Buffer {
  if (runtime) return rhea.message.encode(toAmqpMessage(event, runtime));
  let payload = encoded.get(event);
  if (!payload) {
    payload = rhea.message.encode(toAmqpMessage(event));
    encoded.set(event, payload);
  }
  return payload;
}
