// Devices sending telemetry over HTTPS as azure-iot-device-http does: POST
// /devices/{id}/messages/events with the device's SAS token, the system properties as IoTHub-*
// headers and the application property as iothub-app-bench, on a keep-alive connection per request
// in flight. With `load.batch` > 1, each request is a batch of that many messages
// (application/vnd.microsoft.iothub.json, bodies base64), as sendEventBatch sends them.
import { Agent, request } from 'node:https';
import { createSecureContext } from 'node:tls';
import { deviceToken, type MqttTarget } from '../lib/device-auth.js';
import { telemetryBody, type D2CLoad, type D2CTally } from '../lib/d2c.js';
import { wallMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

const BATCH_CONTENT_TYPE = 'application/vnd.microsoft.iothub.json';

workerMain<{ target: MqttTarget; deviceIds: string[]; perDevice: number; load: D2CLoad }>(
  async ({ target, deviceIds, perDevice, load }, ctx) => {
    const batch = Math.max(1, load.batch ?? 1);
    const body = telemetryBody(load.payloadBytes);
    const entry = {
      body: body.toString('base64'),
      properties: { 'iothub-app-bench': load.tag, 'iothub-contenttype': 'application/json', 'iothub-contentencoding': 'utf-8' },
    };
    // A device's last batch may be smaller: no device sends more than perDevice.
    const batchBodies = new Map<number, Buffer>();
    const batchBody = (n: number) =>
      batchBodies.get(n) ?? batchBodies.set(n, Buffer.from(JSON.stringify(Array.from({ length: n }, () => entry)))).get(n)!;
    const tally: D2CTally = { count: 0, failed: 0, firstAt: 0, lastAt: 0 };
    const secureContext = createSecureContext({ ca: target.ca });
    let deadline = Infinity;

    const runDevice = async (deviceId: string): Promise<void> => {
      // noDelay, as the MQTT publishers' sockets: Nagle would hold a request back for the last one's ACK.
      const agent = new Agent({ keepAlive: true, maxSockets: load.window, noDelay: true, secureContext } as object);
      const authorization = deviceToken(target.hostName, deviceId);
      const path = `/devices/${encodeURIComponent(deviceId)}/messages/events?api-version=2021-04-12`;
      let sent = 0;
      const post = (seq: number, n: number): Promise<void> =>
        new Promise((resolve) => {
          const single = {
            'iothub-to': path,
            'IoTHub-MessageId': `${load.tag}-${seq}`,
            'IoTHub-CorrelationId': `corr-${seq}`,
            'iothub-contenttype': 'application/json',
            'iothub-contentencoding': 'utf-8',
            'iothub-app-bench': load.tag,
          };
          const headers = { Authorization: authorization, ...(batch > 1 ? { 'Content-Type': BATCH_CONTENT_TYPE } : single) };
          const req = request(
            { host: '127.0.0.1', port: target.port, servername: 'localhost', method: 'POST', path, agent, headers },
            (res) => {
              res.resume().on('end', () => {
                if (res.statusCode === 204) tally.count += n;
                else {
                  tally.failed! += n;
                  tally.firstError ??= `${deviceId}: HTTP ${res.statusCode}`;
                }
                tally.lastAt = wallMs();
                resolve();
              });
            },
          );
          req.on('error', (err) => {
            tally.failed! += n;
            tally.firstError ??= `${deviceId}: ${err.message}`;
            resolve();
          });
          req.end(batch > 1 ? batchBody(n) : body);
        });
      // `window` lanes, each posting its next request once the last is answered.
      const lane = async () => {
        while (sent < perDevice && wallMs() < deadline && !ctx.stopping.aborted) {
          const seq = sent;
          const n = Math.min(batch, perDevice - sent);
          sent += n;
          await post(seq, n);
        }
      };
      await Promise.all(Array.from({ length: load.window }, lane));
      agent.destroy();
    };

    ctx.report({ type: 'ready' });
    await new Promise<void>((resolve) => ctx.on((m) => m.type === 'go' && resolve()));
    tally.firstAt = wallMs();
    deadline = tally.firstAt + load.timeMs;
    await Promise.all(deviceIds.map(runDevice));
    return tally;
  },
);
