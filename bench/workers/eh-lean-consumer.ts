// Observes D2C events on the hub's Event Hubs-compatible endpoint the lean way, as the baseline's
// MQTT subscriber observes bare aedes: rhea directly (the AMQP library @azure/event-hubs runs on),
// doing what the SDK does on the wire and nothing more: SASL ANONYMOUS, a put-token on $cbs, a READ
// on $management for the partition ids, then one receiver link per partition at
// <hub>/ConsumerGroups/$Default/Partitions/<n> with an enqueued-time filter. It counts the events of
// one run (by their 'bench' application property) until all have arrived or time is up.
import { createHmac } from 'node:crypto';
import rhea, { type Connection, type EventContext, type Message } from 'rhea';
import type { D2CTally } from '../lib/d2c.js';
import { wallMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

/** What the SDK reads from an Event Hubs connection string. */
function parseConnectionString(text: string): { host: string; port: number; keyName: string; key: string; hub: string } {
  const fields = new Map(
    text
      .split(';')
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf('=');
        return [pair.slice(0, at), pair.slice(at + 1)] as [string, string];
      }),
  );
  const endpoint = new URL(fields.get('Endpoint')!);
  return {
    host: endpoint.hostname,
    port: Number(endpoint.port),
    keyName: fields.get('SharedAccessKeyName')!,
    key: fields.get('SharedAccessKey')!,
    hub: fields.get('EntityPath')!,
  };
}

/** An Event Hubs SAS token: HMAC-SHA256 keyed by the key's text, as @azure/core-amqp signs it. */
function sasToken(audience: string, keyName: string, key: string): string {
  const sr = encodeURIComponent(audience);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = encodeURIComponent(createHmac('sha256', key).update(`${sr}\n${se}`).digest('base64'));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}&skn=${encodeURIComponent(keyName)}`;
}

/** One request on a $cbs or $management node; resolves with the reply (status 200) or rejects. */
function request(connection: Connection, node: string, message: Message): Promise<Message> {
  return new Promise((resolve, reject) => {
    const replyTo = `${node}-replies-${Math.random().toString(36).slice(2)}`;
    const receiver = connection.open_receiver({ source: { address: node }, target: { address: replyTo } });
    const sender = connection.open_sender({ target: { address: node } });
    receiver.once('message', (context: EventContext) => {
      sender.close();
      receiver.close();
      const reply = context.message!;
      const status = reply.application_properties?.['status-code'];
      if (status === 200 || status === 202) resolve(reply);
      else reject(new Error(`${node}: ${status} ${reply.application_properties?.['status-description']}`));
    });
    sender.once('sendable', () => sender.send({ ...message, message_id: replyTo, reply_to: replyTo }));
  });
}

workerMain<{ connectionString: string; tag: string; expected: number; since: number; timeMs: number }>(async (config, ctx) => {
  const { host, port, keyName, key, hub } = parseConnectionString(config.connectionString);
  const container = rhea.create_container();
  const connection = container.connect({ host, port, reconnect: false });
  await new Promise((resolve, reject) => connection.once('connection_open', resolve).once('disconnected', reject));

  // A token for the whole Event Hub covers $management and every partition.
  await request(connection, '$cbs', {
    application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: `sb://${host}:${port}/${hub}` },
    body: sasToken(`sb://${host}:${port}/${hub}`, keyName, key),
  });
  const info = await request(connection, '$management', {
    application_properties: { operation: 'READ', name: hub, type: 'com.microsoft:eventhub' },
    body: null,
  });
  const partitionIds = (info.body as { partition_ids: string[] }).partition_ids;

  const tally: D2CTally = { count: 0, firstAt: 0, lastAt: 0 };
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const filter = {
    'apache.org:selector-filter:string': rhea.types.wrap_described(
      `amqp.annotation.x-opt-enqueued-time > '${Math.floor(config.since)}'`,
      0x468c00000004,
    ),
  };
  for (const id of partitionIds) {
    // credit_window: rhea tops the credit up as events arrive (the SDK grants its batch size).
    // rhea's auto-accept settles each (pre-settled) event locally, which frees its slot in the
    // session window and sends nothing; without it the window closes after 2,048 events.
    const receiver = connection.open_receiver({
      source: { address: `${hub}/ConsumerGroups/$Default/Partitions/${id}`, filter },
      credit_window: 500,
    });
    receiver.on('message', (context: EventContext) => {
      if (context.message!.application_properties?.bench !== config.tag) return;
      const now = wallMs();
      if (tally.count++ === 0) tally.firstAt = now;
      tally.lastAt = now;
      if (tally.count >= config.expected) done();
    });
    receiver.on('receiver_error', (context: EventContext) => (tally.firstError ??= JSON.stringify(context.receiver?.error)));
  }
  ctx.report({ type: 'ready' });
  ctx.on((m) => m.type === 'expect' && ((config.expected = m.count), tally.count >= m.count && done()));
  const timer = setTimeout(done, config.timeMs);
  await Promise.race([finished, new Promise((resolve) => ctx.stopping.addEventListener('abort', resolve))]);
  clearTimeout(timer);
  connection.close();
  return tally;
});
