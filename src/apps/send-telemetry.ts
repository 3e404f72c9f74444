import '../clients/os-release.js'; // before any Azure SDK
import { setTimeout as delay } from 'node:timers/promises';
import deviceSdk from 'azure-iot-device';
import type { DeviceConnection } from '../clients/connection-string.js';
import { createDeviceClient, openClient, type DeviceClient, type DeviceTransport } from '../clients/device-clients.js';
import { onReconnect } from '../clients/reconnect.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { explain } from '../clients/sdk-errors.js';

/** IoT Hub's limit for one device-to-cloud message, body and properties together. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** One of the tutorial's messages, as sent. */
export interface TelemetryMessage {
  deviceId: string;
  messageId: string;
  correlationId: string;
  body: { deviceId: string; windSpeed: number; padding?: string };
  properties: { Property: string };
}

export interface Confirmation extends TelemetryMessage {
  /** Confirmations so far, over all devices. */
  confirmed: number;
}

export interface TelemetrySummary {
  sent: number;
  confirmed: number;
  failed: number;
  seconds: number;
  msgPerSec: number;
}

export interface SendTelemetryOptions {
  /** The device SDK's transport (default MQTT). */
  transport?: DeviceTransport;
  /** Messages per device; without it, send until aborted (the tutorial's endless loop). */
  count?: number;
  /** Pause between one device's messages. Default 1000. */
  intervalMs?: number;
  /** Pad each body to about this many bytes (to try the size limit, or to measure throughput). */
  messageBytes?: number;
  signal?: AbortSignal;
  onConfirm?: (confirmation: Confirmation) => void;
  onFailure?: (message: TelemetryMessage, error: string) => void;
  /** Called after each confirmation or failure. */
  onProgress?: (summary: TelemetrySummary) => void;
  /** A device's connection dropped and the SDK has reconnected it (its pending sends go on). */
  onReconnect?: (deviceId: string) => void;
}

/** Sends in flight per device before the next send waits (the SDK queues the rest in memory). */
const MAX_IN_FLIGHT = 100;
const AVG_WIND_SPEED = 10;

/**
 * SimulatedDevice: each device connection sends the tutorial's windSpeed messages (over MQTT unless
 * told otherwise) with a message id, a correlation id and an application property, and counts the
 * hub's confirmations (PUBACKs; over HTTPS, 204 answers). The SDK's default retry policy (exponential
 * back-off with jitter) carries sends over a dropped connection, so a hub restart only delays them: a
 * send whose confirmation was lost is sent again (at least once), and only confirmed messages, which
 * the hub has stored, count as confirmed.
 */
export async function sendTelemetry(connections: DeviceConnection[], options: SendTelemetryOptions = {}): Promise<TelemetrySummary> {
  const { count, intervalMs = 1000, signal } = options;
  const started = Date.now();
  const totals = { sent: 0, confirmed: 0, failed: 0 };
  const summary = (): TelemetrySummary => {
    const seconds = (Date.now() - started) / 1000;
    return { ...totals, seconds, msgPerSec: seconds > 0 ? Math.round((totals.confirmed / seconds) * 10) / 10 : 0 };
  };
  const deviceIds = connections.map((c) => c.deviceId);
  // Refuse before connecting what IoT Hub would refuse (the Python SDK checks the same way).
  checkSize(tutorialMessage(deviceIds[0]!, 1, options.messageBytes));

  const clients: DeviceClient[] = [];
  try {
    for (const [i, connection] of connections.entries()) {
      const client = await createDeviceClient(connection, options.transport, { features: ['telemetry'] });
      clients.push(client);
      onReconnect(client, () => options.onReconnect?.(deviceIds[i]!));
      const what = `connecting device '${deviceIds[i]}'`;
      const opened = await openClient(client, what, signal).catch((err) => {
        throw explain(err, what);
      });
      if (!opened) return summary();
    }
    await Promise.all(
      clients.map(async (client, i) => {
        const inFlight = new Set<Promise<void>>();
        for (let n = 1; count === undefined || n <= count; n++) {
          if (signal?.aborted) break;
          const message = tutorialMessage(deviceIds[i]!, n, options.messageBytes);
          totals.sent++;
          const sending = client
            .sendEvent(toSdkMessage(message))
            .then(
              () => {
                totals.confirmed++;
                options.onConfirm?.({ ...message, confirmed: totals.confirmed });
              },
              (err: unknown) => {
                totals.failed++;
                options.onFailure?.(message, explain(err).message);
              },
            )
            .finally(() => {
              inFlight.delete(sending);
              options.onProgress?.(summary());
            });
          inFlight.add(sending);
          if (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
          // An abort ends the pause early; the loop then stops.
          if (count === undefined || n < count) await delay(intervalMs, undefined, { signal }).catch(() => undefined);
        }
        await Promise.all(inFlight);
      }),
    );
  } finally {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  }
  return summary();
}

/** The tutorial's message number n (counted from 1): windSpeed 12 to 16, message_n, correlation_n, Property=PropMsg_n. */
export function tutorialMessage(deviceId: string, n: number, messageBytes?: number): TelemetryMessage {
  const body: TelemetryMessage['body'] = { deviceId, windSpeed: Math.round((AVG_WIND_SPEED + Math.random() * 4 + 2) * 100) / 100 };
  if (messageBytes) {
    const unpadded = JSON.stringify({ ...body, padding: '' }).length;
    body.padding = 'x'.repeat(Math.max(0, messageBytes - unpadded));
  }
  return { deviceId, messageId: `message_${n}`, correlationId: `correlation_${n}`, body, properties: { Property: `PropMsg_${n}` } };
}

function toSdkMessage(message: TelemetryMessage): deviceSdk.Message {
  const sdkMessage = new deviceSdk.Message(JSON.stringify(message.body));
  sdkMessage.messageId = message.messageId;
  sdkMessage.correlationId = message.correlationId;
  sdkMessage.contentType = 'application/json';
  sdkMessage.contentEncoding = 'utf-8';
  for (const [key, value] of Object.entries(message.properties)) sdkMessage.properties.add(key, value);
  return sdkMessage;
}

/** Body plus the names and values of the properties, as IoT Hub counts a message's size. */
function checkSize(message: TelemetryMessage): void {
  const fields = {
    messageId: message.messageId,
    correlationId: message.correlationId,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    ...message.properties,
  };
  const size =
    Buffer.byteLength(JSON.stringify(message.body)) +
    Object.entries(fields).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (size > MAX_MESSAGE_BYTES) {
    throw new ToolkitError(
      `each message would be ${size} bytes: IoT Hub accepts device-to-cloud messages up to ${MAX_MESSAGE_BYTES} bytes (256 KB), body and properties together.`,
      ExitCode.tooLarge,
    );
  }
}
