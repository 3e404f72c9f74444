import { rhea } from './rhea.js';
import { HubError } from '../errors.js';

// What the hub reads from AMQP messages, and IoT Hub's errors as AMQP errors: the same for every link.

/** A message or correlation id (a string, or a UUID the SDK encoded as 16 bytes), or a user id (binary). */
export function idText(id: unknown, binary = false): string | undefined {
  if (id === undefined || id === null) return undefined;
  if (Buffer.isBuffer(id)) return !binary && id.length === 16 ? rhea().uuid_to_string(id) : id.toString('utf8');
  return String(id);
}

export function bodyBytes(body: unknown): Buffer {
  const content = (body as { content?: unknown } | undefined)?.content ?? body;
  if (Buffer.isBuffer(content)) return content;
  if (content instanceof Uint8Array) return Buffer.from(content);
  if (content === undefined || content === null) return Buffer.alloc(0);
  return Buffer.from(typeof content === 'string' ? content : JSON.stringify(content));
}

/** IoT Hub's errors as the AMQP conditions the service SDK translates (amqp_service_errors.js). */
export function amqpError(error: unknown): { condition: string; description: string } {
  if (!(error instanceof HubError)) return { condition: 'amqp:internal-error', description: String((error as Error)?.message ?? error) };
  const description = `ErrorCode:${error.code};${error.message}`;
  if (error.errorCode === 403004) return { condition: 'amqp:resource-limit-exceeded', description };
  if (error.status === 429) return { condition: 'com.microsoft:device-container-throttled', description };
  if (error.status === 404) return { condition: 'amqp:not-found', description };
  if (error.status === 413) return { condition: 'amqp:link:message-size-exceeded', description };
  if (error.status === 400) return { condition: 'amqp:invalid-field', description };
  return { condition: 'amqp:internal-error', description };
}
