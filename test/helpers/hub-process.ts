import { LocalHub } from '../../src/hub/server.js';
import { createLog } from '../../src/hub/log.js';

// A hub in a process of its own, for tests that must change what the process may hold (its
// descriptor limit) without touching the test runner's: in memory, on ephemeral ports, its log on
// stderr. Prints one JSON line with what clients need, and stops on SIGTERM.

const hub = await LocalHub.start({ inMemory: true, port: 0, eventHubPort: 0, log: createLog('info') });
process.stdout.write(
  `${JSON.stringify({
    port: hub.port,
    eventHubPort: hub.eventHubPort,
    ca: hub.tls.ca,
    serviceConnectionString: hub.serviceConnectionString(),
    eventHubConnectionString: hub.eventHubConnectionString(),
  })}\n`,
);
process.once('SIGTERM', () => {
  void hub.stop().then(() => process.exit(0));
});
