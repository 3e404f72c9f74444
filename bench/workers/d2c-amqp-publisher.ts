// Devices sending telemetry over AMQPS as azure-iot-device-amqp does: a connection per device on the
// hub's TLS port, a put-token on $cbs with the device's SAS token (its sr, URL-encoded, as the
// audience), a sender link on /devices/{id}/messages/events, and messages with the message and
// correlation ids, content type and encoding, and the application property `bench`; `load.window`
// unsettled at a time per device, each counted when the hub accepts it (after the commit).
import rhea, { type Connection, type EventContext } from 'rhea';
import { deviceToken, type MqttTarget } from '../lib/device-auth.js';
import { telemetryBody, type D2CLoad, type D2CTally } from '../lib/d2c.js';
import { wallMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

workerMain<{ target: MqttTarget; deviceIds: string[]; perDevice: number; load: D2CLoad }>(
  async ({ target, deviceIds, perDevice, load }, ctx) => {
    const body = rhea.message.data_section(telemetryBody(load.payloadBytes));
    const tally: D2CTally = { count: 0, failed: 0, firstAt: 0, lastAt: 0 };
    let deadline = Infinity;

    /** Connects and authorises a device; resolves with its telemetry link once attached. */
    const connectDevice = async (deviceId: string) => {
      const connection: Connection = rhea.create_container().connect({
        transport: 'tls',
        host: '127.0.0.1',
        servername: 'localhost',
        port: target.port,
        ca: target.ca,
        reconnect: false,
      } as rhea.ConnectionOptions);
      connection.on('error', () => {});
      connection.on('disconnected', () => {});
      const replyTo = `cbs-${deviceId}`;
      const replies = connection.open_receiver({ source: { address: '$cbs' }, target: { address: replyTo } });
      const cbs = connection.open_sender({ target: { address: '$cbs' } });
      await new Promise<void>((resolve, reject) => {
        replies.once('message', (c: EventContext) =>
          c.message!.application_properties?.['status-code'] === 200 ? resolve() : reject(new Error(`${deviceId}: put-token refused`)),
        );
        cbs.once('sendable', () =>
          cbs.send({
            reply_to: replyTo,
            application_properties: {
              operation: 'put-token',
              name: encodeURIComponent(`${target.hostName}/devices/${deviceId}`),
              type: 'servicebus.windows.net:sastoken',
            },
            body: deviceToken(target.hostName, deviceId),
          }),
        );
      });
      const address = `/devices/${deviceId}/messages/events`;
      const link = connection.open_sender({ target: { address } });
      await new Promise((resolve) => link.once('sendable', resolve));
      return { connection, link, address };
    };

    const devices = await Promise.all(deviceIds.map(connectDevice));
    ctx.report({ type: 'ready' });
    await new Promise<void>((resolve) => ctx.on((m) => m.type === 'go' && resolve()));
    tally.firstAt = wallMs();
    deadline = tally.firstAt + load.timeMs;

    await Promise.all(
      devices.map(
        ({ link, address }) =>
          new Promise<void>((resolve) => {
            let sent = 0;
            let settled = 0;
            const more = () => {
              while (sent < perDevice && sent - settled < load.window && link.sendable() && wallMs() < deadline && !ctx.stopping.aborted) {
                const seq = sent++;
                link.send({
                  message_id: `${load.tag}-${seq}`,
                  correlation_id: `corr-${seq}`,
                  content_type: 'application/json',
                  content_encoding: 'utf-8',
                  to: address,
                  application_properties: { bench: load.tag },
                  body,
                });
              }
              if (settled === sent && (sent >= perDevice || wallMs() >= deadline || ctx.stopping.aborted)) resolve();
            };
            const settle = (ok: boolean, context: EventContext) => {
              settled++;
              if (ok) tally.count++;
              else {
                tally.failed!++;
                tally.firstError ??= `${address}: ${JSON.stringify(context.delivery?.remote_state)}`;
              }
              tally.lastAt = wallMs();
              more();
            };
            link.on('accepted', (c: EventContext) => settle(true, c));
            link.on('rejected', (c: EventContext) => settle(false, c));
            link.on('sendable', more);
            more();
          }),
      ),
    );
    for (const { connection } of devices) connection.close();
    return tally;
  },
);
