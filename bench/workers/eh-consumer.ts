// Observes D2C events on the hub's Event Hubs-compatible endpoint with @azure/event-hubs, counting
// the events of one run (by its 'bench' property) until all have arrived or time is up.
import { EventHubConsumerClient } from '@azure/event-hubs';
import type { D2CTally } from '../lib/d2c.js';
import { wallMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ connectionString: string; tag: string; expected: number; since: number; timeMs: number }>(async (config, ctx) => {
  const consumer = new EventHubConsumerClient(EventHubConsumerClient.defaultConsumerGroupName, config.connectionString);
  const tally: D2CTally = { count: 0, firstAt: 0, lastAt: 0 };
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const subscription = consumer.subscribe(
    {
      processEvents: async (events) => {
        for (const event of events) {
          if (event.properties?.bench !== config.tag) continue;
          const now = wallMs();
          if (tally.count++ === 0) tally.firstAt = now;
          tally.lastAt = now;
        }
        if (tally.count >= config.expected) done();
      },
      processError: async (err) => {
        tally.firstError ??= err.message;
      },
    },
    { startPosition: { enqueuedOn: new Date(config.since) }, maxBatchSize: 500, maxWaitTimeInSeconds: 1 },
  );
  ctx.report({ type: 'ready' });
  ctx.on((m) => m.type === 'expect' && ((config.expected = m.count), tally.count >= m.count && done()));
  const timer = setTimeout(done, config.timeMs);
  await Promise.race([finished, new Promise((resolve) => ctx.stopping.addEventListener('abort', resolve))]);
  clearTimeout(timer);
  await subscription.close();
  await consumer.close();
  return tally;
});
