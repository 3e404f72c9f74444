import '../clients/os-release.js'; // before any Azure SDK
import { randomUUID } from 'node:crypto';
import { createServiceClient, serviceMessage, type ServiceProtocol } from '../clients/service-clients.js';
import type { ServiceConnection } from '../clients/connection-string.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { explain } from '../clients/sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';

/** The delivery feedback IoT Hub sends for a message that asked for it. */
export interface FeedbackRecord {
  originalMessageId: string;
  deviceId: string;
  statusCode: string;
  description: string;
  enqueuedTimeUtc: string;
}

export interface SendC2dOptions {
  deviceId: string;
  /** Default: the tutorial's "Cloud to device message.". */
  message?: string;
  /** Default 1. */
  count?: number;
  /** none, positive, negative or full (the tutorial's). */
  ack: string;
  /** Seconds until the message expires (IoT Hub's default: an hour). */
  ttlSeconds?: number;
  properties?: Record<string, string>;
  /** Wait this long for each message's feedback; absent or 0: do not wait. */
  waitFeedbackSeconds?: number;
  protocol?: ServiceProtocol;
  onSent?(sent: { messageId: string; data: string }): void;
  onFeedback?(record: FeedbackRecord): void;
}

export const TUTORIAL_C2D_MESSAGE = 'Cloud to device message.';

/**
 * SendCloudToDeviceMessage: sends messages to a device through the hub (azure-iothub's Client over
 * AMQP), each with a message id and the ack asked for, and, when asked to wait, prints the delivery
 * feedback of each (ExitCode.timeout when some has not come in time).
 */
export async function sendC2d(
  connection: ServiceConnection,
  options: SendC2dOptions,
): Promise<{ sent: number; feedback: FeedbackRecord[] }> {
  const client = createServiceClient(connection, options.protocol);
  const data = options.message ?? TUTORIAL_C2D_MESSAGE;
  const count = options.count ?? 1;
  const waiting = new Set<string>();
  const feedback: FeedbackRecord[] = [];
  const wait = options.waitFeedbackSeconds && options.ack !== 'none' ? options.waitFeedbackSeconds : 0;
  let allArrived!: () => void;
  const arrived = new Promise<void>((resolve) => (allArrived = resolve));
  let timer: NodeJS.Timeout | undefined;
  try {
    await client.open();
    if (wait) {
      // Attached before the first send, so that no feedback of these messages can pass unseen.
      const { result: receiver } = await client.getFeedbackReceiver();
      receiver.on('message', (message: ReturnType<typeof serviceMessage>) => {
        for (const record of JSON.parse(message.getData().toString()) as FeedbackRecord[]) {
          if (!waiting.delete(record.originalMessageId)) continue;
          feedback.push(record);
          options.onFeedback?.(record);
        }
        if (waiting.size === 0) allArrived();
      });
    }
    for (let i = 0; i < count; i++) {
      const message = serviceMessage(data);
      message.messageId = randomUUID();
      message.ack = options.ack;
      if (options.ttlSeconds !== undefined) message.expiryTimeUtc = Date.now() + options.ttlSeconds * 1000; // ms: an AMQP timestamp
      for (const [key, value] of Object.entries(options.properties ?? {})) message.properties.add(key, value);
      if (wait) waiting.add(message.messageId);
      // A throttled send was not queued: sending it again after a backoff cannot duplicate it.
      await withRetry(() => client.send(options.deviceId, message), { ...DEFAULT_RETRY, what: `sending to ${options.deviceId}` });
      options.onSent?.({ messageId: message.messageId, data });
    }
    if (wait && waiting.size > 0) {
      await Promise.race([
        arrived,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new ToolkitError(
                  `the feedback of ${waiting.size} message(s) did not arrive within ${wait} s (is the device receiving?)`,
                  ExitCode.timeout,
                ),
              ),
            wait * 1000,
          );
        }),
      ]);
    }
    return { sent: count, feedback };
  } catch (err) {
    throw explain(err, `sending to ${options.deviceId}`, { deviceId: options.deviceId });
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => undefined);
  }
}
