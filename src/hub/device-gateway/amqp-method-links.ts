import type { EventContext, Message, Receiver, Sender } from 'rhea';
import { rhea } from '../amqp/rhea.js';
import { amqpError, bodyBytes, idText } from '../amqp/amqp-values.js';
import { HubError, hubErrors } from '../errors.js';
import type { HubLog } from '../log.js';
import { parseAnswerPayload, type MethodChannel, type MethodResult } from '../methods/direct-methods.js';
import { ListeningWaiters } from '../methods/listening-waiters.js';
import type { IdentityKey } from '../registry/registry.js';
import type { DeviceLink, DeviceLinkHandler } from './amqp-device-links.js';

// Direct methods over AMQP, as azure-iot-device-amqp's AmqpDeviceMethodClient uses them: the device
// attaches a link pair to /devices/{id}[/modules/{mid}]/methods/devicebound. The hub sends each call
// on the device's receiving link, with the method's name in the `IoThub-methodname` application
// property, a uuid correlation id and the JSON payload as a data section; the device answers on its
// sending link with the same correlation id and the status in `IoThub-status`.

const METHOD_NAME = 'IoThub-methodname';
const STATUS = 'IoThub-status';

/**
 * IoT Hub's correlation id is an AMQP uuid (the C SDK accepts nothing else). The hub's request id (a
 * hex counter) is its last 12 digits, under a fixed version-4 prefix, so that the answer's id leads
 * back to it without a table of ids in flight.
 */
const UUID_PREFIX = '00000000-0000-4000-8000-';
const RID_DIGITS = 12;

export class AmqpMethodLinks implements MethodChannel, DeviceLinkHandler {
  private onAnswer: (from: IdentityKey, rid: string, result: MethodResult) => void = () => {};
  /** Each identity's link for method calls (the latest attached, if it attached more than one). */
  private readonly requestLinks = new Map<string, Sender>();
  /** The identity of each link for method calls, until it is gone. */
  private readonly identities = new Map<Sender, string>();
  private readonly waiters = new ListeningWaiters();

  constructor(private readonly log: HubLog) {}

  /** Where device answers go (the DirectMethods that issued the request ids). */
  answersTo(listener: (from: IdentityKey, rid: string, result: MethodResult) => void): void {
    this.onAnswer = listener;
  }

  /** The device's receiving link (the hub's sender): method calls for the identity go there once it gives credit. */
  toDevice({ key, link }: DeviceLink<Sender>): void {
    const id = identityId(key);
    this.requestLinks.set(id, link);
    this.identities.set(link, id);
    link.on('sendable', () => this.waiters.changed());
    this.waiters.changed();
  }

  /** The device's sending link (the hub's receiver): its answers, each settled once handled. */
  fromDevice({ key, link }: DeviceLink<Receiver>): void {
    link.on('message', (context: EventContext) => {
      const delivery = context.delivery!;
      try {
        this.answer(key, context.message!);
        delivery.accept();
      } catch (err) {
        const refused = amqpError(err);
        if (err instanceof HubError) this.log.info('amqp', `refused a method response of ${identityId(key)}: ${refused.description}`);
        else this.log.error('amqp', `could not handle a method response of ${identityId(key)}: ${(err as Error)?.stack ?? err}`);
        delivery.reject(refused);
      }
    });
  }

  /** A link of the pair is gone (detached, expired, revoked, or its connection closed). */
  gone(link: Sender | Receiver): void {
    const id = this.identities.get(link as Sender);
    if (id === undefined) return;
    this.identities.delete(link as Sender);
    if (this.requestLinks.get(id) === link) this.requestLinks.delete(id);
  }

  /**
   * True when the identity's link for calls is open and has credit: the hub queues nothing for a
   * device that does not read (rhea would hold it, up to an overflow that throws).
   */
  isListening(key: IdentityKey): boolean {
    const link = this.requestLinks.get(identityId(key));
    return !!link && link.is_open() && link.sendable();
  }

  whenListening(key: IdentityKey, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    return this.waiters.wait(() => this.isListening(key), timeoutMs, signal);
  }

  deliver(key: IdentityKey, methodName: string, rid: string, payload: unknown): Promise<void> {
    if (!this.isListening(key)) return Promise.reject(new Error('not listening'));
    this.requestLinks.get(identityId(key))!.send({
      correlation_id: rhea().string_to_uuid(UUID_PREFIX + rid.padStart(RID_DIGITS, '0')),
      application_properties: { [METHOD_NAME]: methodName },
      body: rhea().message.data_section(Buffer.from(JSON.stringify(payload))),
    });
    return Promise.resolve();
  }

  private answer(from: IdentityKey, message: Message): void {
    const rid = requestId(message.correlation_id);
    const status = message.application_properties?.[STATUS];
    if (rid === undefined) throw hubErrors.argumentInvalid('The method response has no correlation id of a method call of this hub');
    if (typeof status !== 'number' || !Number.isInteger(status))
      throw hubErrors.argumentInvalid(`The method response has no integer '${STATUS}' application property`);
    this.onAnswer(from, rid, { status, payload: parseAnswerPayload(bodyBytes(message.body)) });
  }
}

/** The hub's request id in an answer's correlation id: a uuid (16 bytes) or its text, as the SDK sends it. */
function requestId(correlationId: unknown): string | undefined {
  const text = idText(correlationId);
  if (text === undefined || !text.toLowerCase().startsWith(UUID_PREFIX)) return undefined;
  const rid = text.slice(UUID_PREFIX.length).toLowerCase().replace(/^0+/, '');
  return /^[0-9a-f]+$/.test(rid) ? rid : undefined;
}

function identityId(key: IdentityKey): string {
  return key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId;
}
