import type { PublishPacket } from 'aedes';
import type { DeviceSession, MqttGateway, TopicHandler } from './mqtt-gateway.js';
import type { IdentityKey } from '../registry/registry.js';
import { parseAnswerPayload, type MethodChannel, type MethodResult } from '../methods/direct-methods.js';
import { hubErrors } from '../errors.js';
import { ListeningWaiters } from '../methods/listening-waiters.js';

const REQUESTS = '$iothub/methods/POST/';
const RESPONSES = '$iothub/methods/res/';
// $iothub/methods/res/{status}/?$rid={rid}
const RESPONSE_TOPIC = /^\$iothub\/methods\/res\/(\d{3})\/?\?(.*)$/;

/**
 * Direct methods over MQTT: the hub publishes a call on $iothub/methods/POST/{name}/?$rid={rid}
 * to the one device it is for; the device answers on $iothub/methods/res/{status}/?$rid={rid}.
 */
export class MethodTopics implements TopicHandler, MethodChannel {
  private onResponse: (from: IdentityKey, rid: string, result: MethodResult) => void = () => {};
  /** Calls waiting (connectTimeoutInSeconds) for their device to subscribe; one gateway listener serves them all. */
  private readonly waiters = new ListeningWaiters();

  constructor(private readonly mqtt: MqttGateway) {
    mqtt.on('subscribed', () => this.waiters.changed());
  }

  /** Where device answers go (the DirectMethods that issued the request ids). */
  answersTo(listener: (from: IdentityKey, rid: string, result: MethodResult) => void): void {
    this.onResponse = listener;
  }

  subscribes(filter: string): boolean {
    return filter.startsWith(REQUESTS);
  }

  publishes(topic: string): boolean {
    return topic.startsWith(RESPONSES);
  }

  handle(session: DeviceSession, packet: PublishPacket): void {
    const match = RESPONSE_TOPIC.exec(packet.topic);
    const rid = match && new URLSearchParams(match[2]).get('$rid');
    if (!match || !rid) throw hubErrors.argumentInvalid(`'${packet.topic}' is not $iothub/methods/res/{status}/?$rid={rid}`);
    this.onResponse(session.key, rid, { status: Number(match[1]), payload: parseAnswerPayload(packet.payload) });
  }

  isListening(key: IdentityKey): boolean {
    return this.mqtt.isSubscribed(key, REQUESTS);
  }

  whenListening(key: IdentityKey, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    return this.waiters.wait(() => this.isListening(key), timeoutMs, signal);
  }

  deliver(key: IdentityKey, methodName: string, rid: string, payload: unknown): Promise<void> {
    return this.mqtt.sendTo(key, `${REQUESTS}${methodName}/?$rid=${rid}`, JSON.stringify(payload));
  }
}
