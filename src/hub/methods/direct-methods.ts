import { hubErrors } from '../errors.js';
import { jsonProblem } from '../json-bounds.js';
import type { IdentityKey, Registry } from '../registry/registry.js';

/** The body of POST /twins/{id}[/modules/{id}]/methods, after validation and defaults. */
export interface MethodInvocation {
  methodName: string;
  payload: unknown;
  responseTimeoutInSeconds: number;
  connectTimeoutInSeconds: number;
}

/** What the device answered, as IoT Hub returns it to the caller. */
export interface MethodResult {
  status: number;
  payload: unknown;
}

/** The device side of direct methods (MQTT topics, AMQP links), as the domain needs it. */
export interface MethodChannel {
  /** True when the identity is connected and subscribed to method requests. */
  isListening(key: IdentityKey): boolean;
  /** Resolves true as soon as the identity listens, false after timeoutMs or on abort. */
  whenListening(key: IdentityKey, timeoutMs: number, signal: AbortSignal): Promise<boolean>;
  deliver(key: IdentityKey, methodName: string, rid: string, payload: unknown): Promise<void>;
}

// IoT Hub's limits on a direct method call: its request and response payloads are JSON of at
// most 128 KB each ("IoT Hub quotas and throttling", "Other limits").
const RESPONSE_TIMEOUT = { min: 5, max: 300, default: 30 };
const CONNECT_TIMEOUT = { min: 0, max: 300, default: 0 };
const MAX_PAYLOAD_BYTES = 128 * 1024;

interface Pending {
  key: IdentityKey;
  settle(result: MethodResult | Error): void;
}

/** Validates a method call body the way IoT Hub does: 400 for anything out of its documented ranges. */
export function parseInvocation(body: unknown): MethodInvocation {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw hubErrors.argumentInvalid('The request body must be a JSON object');
  const b = body as Record<string, unknown>;
  // The name becomes an MQTT topic level: no separators or wildcards.
  if (typeof b.methodName !== 'string' || !/^[^/#+?\s]+$/.test(b.methodName))
    throw hubErrors.argumentInvalid('methodName must be a non-empty name without spaces, /, #, + or ?');
  const payload = b.payload ?? null;
  const problem = payloadProblem(payload, 'payload');
  if (problem) throw hubErrors.argumentInvalid(problem);
  return {
    methodName: b.methodName,
    payload,
    responseTimeoutInSeconds: seconds(b.responseTimeoutInSeconds, 'responseTimeoutInSeconds', RESPONSE_TIMEOUT),
    connectTimeoutInSeconds: seconds(b.connectTimeoutInSeconds, 'connectTimeoutInSeconds', CONNECT_TIMEOUT),
  };
}

/**
 * Why a method payload (the caller's, or the device's answer) cannot be relayed: not within the JSON
 * bounds, or larger than IoT Hub's 128 KB once serialized; undefined when it can.
 */
function payloadProblem(payload: unknown, name: string): string | undefined {
  const problem = jsonProblem(payload, name);
  if (problem) return problem;
  const bytes = Buffer.byteLength(JSON.stringify(payload));
  return bytes > MAX_PAYLOAD_BYTES ? `${name} is ${bytes} bytes; IoT Hub allows at most ${MAX_PAYLOAD_BYTES} bytes (128 KB)` : undefined;
}

/** A device answers with JSON (over any transport); anything else is passed on as text rather than lost. */
export function parseAnswerPayload(raw: Buffer | string): unknown {
  const text = raw.toString();
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function seconds(value: unknown, name: string, range: { min: number; max: number; default: number }): number {
  if (value === undefined || value === null) return range.default;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
    throw hubErrors.argumentInvalid(`${name} must be a whole number of seconds from ${range.min} to ${range.max}`);
  }
  return value;
}

/**
 * Direct method invocations in flight. Each gets its own request id; the device's answer is
 * paired back by that id (and only from the identity it was sent to). An answer after the
 * timeout, or to an id never issued, is dropped.
 */
export class DirectMethods {
  private readonly pending = new Map<string, Pending>();
  private readonly closing = new AbortController();
  private nextRid = 1;

  constructor(
    private readonly registry: Registry,
    private readonly channel: MethodChannel,
  ) {}

  async invoke(key: IdentityKey, invocation: MethodInvocation): Promise<MethodResult> {
    this.registry.get(key.deviceId, key.moduleId);
    const name = key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId;
    if (!this.channel.isListening(key)) {
      const connectMs = invocation.connectTimeoutInSeconds * 1000;
      if (!connectMs || !(await this.channel.whenListening(key, connectMs, this.closing.signal))) throw hubErrors.deviceNotOnline(name);
    }
    const rid = (this.nextRid++).toString(16);
    const answered = new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          settle(hubErrors.gatewayTimeout(`Timed out waiting for the response from device ${name} to method '${invocation.methodName}'`)),
        invocation.responseTimeoutInSeconds * 1000,
      );
      const settle = (result: MethodResult | Error) => {
        clearTimeout(timer);
        this.pending.delete(rid);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      this.pending.set(rid, { key, settle });
    });
    try {
      await this.channel.deliver(key, invocation.methodName, rid, invocation.payload);
    } catch {
      // The device went away between the check and the send.
      this.pending.get(rid)?.settle(hubErrors.deviceNotOnline(name));
    }
    return answered;
  }

  /**
   * A device's answer; ignored when nothing waits for it (late, unknown, or from another identity).
   * An answer the hub cannot relay (too large, too deep) is refused with a 400, which closes the
   * device's connection as IoT Hub does; the caller gets 504 GatewayTimeout when its time is up.
   */
  complete(from: IdentityKey, rid: string, result: MethodResult): void {
    const problem = payloadProblem(result.payload, 'response payload');
    if (problem) throw hubErrors.argumentInvalid(problem);
    const pending = this.pending.get(rid);
    if (pending && pending.key.deviceId === from.deviceId && pending.key.moduleId === from.moduleId) pending.settle(result);
  }

  inFlight(): number {
    return this.pending.size;
  }

  /** Ends every waiting call: the hub is stopping. */
  close(): void {
    this.closing.abort();
    for (const pending of [...this.pending.values()]) pending.settle(hubErrors.serviceUnavailable('The hub is shutting down'));
  }
}
