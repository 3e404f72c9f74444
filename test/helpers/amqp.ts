import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import rhea, { type Connection, type ConnectionOptions, type EventContext, type Message, type Receiver } from 'rhea';
import { hubName, key, keyName, within } from './events.js';
export { eventually } from './events.js';

// A bare rhea client for the Event Hub-compatible endpoint: what the SDK never does on its own
// (withholding credit, skipping $cbs, short-lived tokens, sending, vanishing mid-stream).

/** An Event Hubs SAS token for `audience`, signed with the test hub's key, valid for `ttlSeconds`. */
export function sasToken(audience: string, ttlSeconds = 3600): string {
  const sr = encodeURIComponent(audience);
  const se = Math.floor(Date.now() / 1000) + ttlSeconds;
  const sig = encodeURIComponent(createHmac('sha256', key).update(`${sr}\n${se}`).digest('base64'));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}&skn=${keyName}`;
}

/** A plain AMQP connection (the Event Hub-compatible endpoint), or AMQPS with the hub's CA (its TLS port). */
export async function open(
  port: number,
  credentials: { username?: string; password?: string } = {},
  tls?: { ca: string },
): Promise<Connection> {
  const transport = tls ? { transport: 'tls', servername: 'localhost', ca: tls.ca } : { transport: 'tcp' };
  const options = { ...transport, host: '127.0.0.1', port, reconnect: false, ...credentials } as ConnectionOptions;
  const connection = rhea.create_container().connect(options);
  connection.on('error', () => {});
  connection.on('disconnected', () => {}); // the test looks at what it needs; rhea would print the rest
  await within(10_000, 'the AMQP connection', once(connection, 'connection_open'));
  return connection;
}

/** A put-token round trip on $cbs; resolves to the reply's status code. */
export async function putToken(connection: Connection, audience: string, token = sasToken(audience)): Promise<number> {
  const replyTo = `cbs-reply-${rhea.generate_uuid()}`;
  const replies = connection.open_receiver({ name: replyTo, source: { address: '$cbs' }, target: { address: replyTo } });
  const requests = connection.open_sender({ target: { address: '$cbs' } });
  await within(10_000, 'the $cbs links', once(requests, 'sendable'));
  const messageId = rhea.generate_uuid();
  requests.send({
    message_id: messageId,
    reply_to: replyTo,
    application_properties: { operation: 'put-token', name: audience, type: 'servicebus.windows.net:sastoken' },
    body: token,
  });
  const [context] = (await within(10_000, 'the $cbs reply', once(replies, 'message'))) as [EventContext];
  assert.equal(context.message!.correlation_id, messageId);
  return context.message!.application_properties!['status-code'] as number;
}

export function partitionAddress(partition: number, group = '$Default'): string {
  return `${hubName}/ConsumerGroups/${group}/Partitions/${partition}`;
}

export function audience(port: number, path: string): string {
  return `sb://localhost:${port}/${path}`;
}

/** Opens a reader with no credit; `messages` fills as the hub sends. */
export function reader(
  connection: Connection,
  address: string,
  filter?: string,
  desiredCapabilities?: string[],
  properties?: Record<string, unknown>,
) {
  const messages: Message[] = [];
  const link: Receiver = connection.open_receiver({
    source: {
      address,
      filter:
        filter === undefined
          ? undefined
          : {
              'apache.org:selector-filter:string': rhea.types.wrap_described(filter, 0x468c00000004),
            },
    },
    credit_window: 0,
    autoaccept: true,
    desired_capabilities: desiredCapabilities,
    properties,
  });
  link.on('message', (context: EventContext) => messages.push(context.message!));
  link.on('receiver_error', () => {});
  return { link, messages };
}
