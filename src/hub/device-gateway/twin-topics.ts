import { randomUUID } from 'node:crypto';
import type { PublishPacket } from 'aedes';
import { HubError, hubErrors } from '../errors.js';
import type { Twins } from '../twins/twin-service.js';
import type { DeviceSession, MqttGateway, TopicHandler } from './mqtt-gateway.js';
import type { HubLog } from '../log.js';

// The twin topics of "Communicate with your IoT hub using the MQTT protocol". They carry no
// device id: every request concerns the twin of the identity that is connected.
const RESPONSES = '$iothub/twin/res/#';
const DESIRED = '$iothub/twin/PATCH/properties/desired/';
const GET = '$iothub/twin/GET/';
const REPORTED = '$iothub/twin/PATCH/properties/reported/';

/**
 * Device twins over MQTT: a device gets its twin and patches its reported properties with a
 * request id, and gets each desired-properties patch the service makes while it is subscribed.
 * A request the hub refuses (bad JSON, a broken limit) is answered with IoT Hub's status on the
 * response topic; the connection stays open, as on IoT Hub.
 */
export class TwinTopics implements TopicHandler {
  constructor(
    private readonly twins: Twins,
    private readonly mqtt: MqttGateway,
    private readonly log: HubLog,
  ) {
    twins.on('desired', (key, patch) => {
      if (!mqtt.isSubscribed(key, DESIRED)) return;
      // A device that drops in between simply misses the patch; it reads the twin when it reconnects.
      mqtt.sendTo(key, `${DESIRED}?$version=${patch.$version}`, JSON.stringify(patch)).catch(() => {});
    });
  }

  publishes(topic: string): boolean {
    return topic.startsWith(GET) || topic.startsWith(REPORTED);
  }

  subscribes(filter: string): boolean {
    return filter === RESPONSES || filter === `${DESIRED}#`;
  }

  async handle(session: DeviceSession, packet: PublishPacket): Promise<void> {
    const rid = requestId(packet.topic);
    // Without a request id there is nowhere to answer: refuse the publish like any malformed one.
    if (rid === undefined) throw hubErrors.argumentInvalid(`The twin request topic '${packet.topic}' has no $rid`);
    const respond = (status: number, body: unknown, extra = '') =>
      this.mqtt.sendTo(session.key, `$iothub/twin/res/${status}/?$rid=${rid}${extra}`, body === undefined ? '' : JSON.stringify(body));
    try {
      if (packet.topic.startsWith(GET)) {
        await respond(200, this.twins.deviceView(session.key));
      } else {
        const version = this.twins.patchReported(session.key, parseJson(packet.payload));
        await respond(204, undefined, `&$version=${version}`);
      }
    } catch (err) {
      const error = err instanceof HubError ? err : hubErrors.serverError('The hub failed to handle the twin request');
      if (!(err instanceof HubError))
        this.log.error('mqtt', `twin request ${packet.topic} of ${session.client.id} failed: ${(err as Error)?.stack ?? err}`);
      await respond(error.status, error.toBody(randomUUID().replace(/-/g, ''))).catch(() => {});
    }
  }
}

/** The `$rid` of a request topic, as the device sent it (echoed back unchanged). */
function requestId(topic: string): string | undefined {
  const q = topic.indexOf('?');
  if (q < 0) return undefined;
  const rid = topic
    .slice(q + 1)
    .split('&')
    .find((p) => p.startsWith('$rid='))
    ?.slice('$rid='.length);
  return rid || undefined;
}

function parseJson(payload: Buffer | string): unknown {
  try {
    return JSON.parse(payload.toString());
  } catch {
    throw hubErrors.argumentInvalid('The reported properties patch is not valid JSON.');
  }
}
