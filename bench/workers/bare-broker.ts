// The baseline: a bare aedes broker on TLS, with a server certificate from the hub's own CA (same
// key type and chain as the hub's), no authentication and no IoT Hub semantics.
import { createServer } from 'node:tls';
import { Aedes } from 'aedes';
import { loadOrCreateTls } from '../../src/hub/auth/certificates.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ tlsDir: string }>(async ({ tlsDir }, ctx) => {
  const tls = loadOrCreateTls(tlsDir);
  const broker = await Aedes.createBroker();
  const server = createServer({ cert: tls.cert, key: tls.key, noDelay: true }, (socket) => broker.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ctx.report({ type: 'ready', port: (server.address() as { port: number }).port, ca: tls.ca });
  await new Promise((resolve) => ctx.stopping.addEventListener('abort', resolve));
  server.close();
  broker.close();
});
