import { randomUUID } from 'node:crypto';
import type { Delivery, EventContext, Message, Receiver, Sender } from 'rhea';
import { rhea } from '../amqp/rhea.js';
import { bodyBytes } from '../amqp/amqp-values.js';
import { HubError, hubErrors } from '../errors.js';
import type { HubLog } from '../log.js';
import type { IdentityKey } from '../registry/registry.js';
import type { DeviceLink, DeviceLinkHandler } from './amqp-device-links.js';
import type { Twins } from '../twins/twin-service.js';

// Device twins over AMQP, as azure-iot-device-amqp's AmqpTwinClient (and the C SDK's twin messenger)
// use them: the device attaches a link pair to /devices/{id}[/modules/{mid}]/twin, both links with
// the same `com.microsoft:channel-correlation-id`. A request on its sending link names the operation
// and resource in message annotations and carries a correlation id; the answer goes back on its
// receiving link with that correlation id, IoT Hub's `status` (an int) and, for a reported patch, the
// new reported `version` (a long) in message annotations. Once the device has PUT the desired
// notification resource, each desired patch follows on the same receiving link, without a correlation id.

const CHANNEL = 'com.microsoft:channel-correlation-id';
const REPORTED = '/properties/reported';
const DESIRED_NOTIFICATIONS = '/notifications/twin/properties/desired';
/** Messages the hub holds for a device link without credit; a twin message is at most ~32 KB. */
const MAX_WAITING = 16;

interface Answer {
  status: number;
  body?: unknown;
  version?: number;
}

export class AmqpTwinLinks implements DeviceLinkHandler {
  /** The device receiving links that asked for desired patches, by identity. */
  private readonly subscribed = new Map<string, Set<Sender>>();
  /** The identity of each subscribed link. */
  private readonly subscribers = new Map<Sender, string>();
  /** Messages for device links without credit yet, in order. */
  private readonly waiting = new Map<Sender, Message[]>();

  constructor(
    private readonly twins: Twins,
    private readonly log: HubLog,
  ) {
    twins.on('desired', (key, patch) => {
      for (const link of this.subscribed.get(identityId(key)) ?? [])
        this.send(key, link, twinMessage(patch, { version: rhea().types.wrap_long(Number(patch.$version)) }), 'a desired patch');
    });
  }

  /** The device's sending link (the hub's receiver): twin requests, each answered on its pair. */
  fromDevice({ key, link }: DeviceLink<Receiver>): void {
    link.on('message', (context: EventContext) => this.request(key, link, context.message!, context.delivery!));
  }

  /**
   * The device's receiving link (the hub's sender): answers and, once asked for, desired patches,
   * each as soon as the device gives credit. Its pair names it by their channel correlation id.
   */
  toDevice({ link }: DeviceLink<Sender>): void {
    link.on('sendable', () => this.flush(link));
  }

  /** A link of the pair is gone (detached, expired, revoked, or its connection closed). */
  gone(link: Sender | Receiver): void {
    this.waiting.delete(link as Sender);
    this.unsubscribe(link as Sender);
  }

  private request(key: IdentityKey, link: Receiver, message: Message, delivery: Delivery): void {
    delivery.accept();
    const responses = responseLink(link);
    const correlationId = message.correlation_id;
    if (!responses || correlationId === undefined || correlationId === null) {
      // Without its pair or a correlation id, there is nowhere to answer (the SDKs always send both).
      this.log.info(
        'amqp',
        `dropped a twin request of ${identityId(key)} on '${link.name}': it has no correlation id or no receiving link to answer on`,
      );
      return;
    }
    const annotations = message.message_annotations ?? {};
    let answer: Answer;
    try {
      answer = this.handle(key, responses, String(annotations.operation ?? ''), annotations.resource, message.body);
    } catch (err) {
      const error = err instanceof HubError ? err : hubErrors.serverError('The hub failed to handle the twin request');
      if (!(err instanceof HubError))
        this.log.error(
          'amqp',
          `twin request ${String(annotations.operation)} of ${identityId(key)} failed: ${(err as Error)?.stack ?? err}`,
        );
      answer = { status: error.status, body: error.toBody(randomUUID().replace(/-/g, '')) };
    }
    const annotationsOut: Record<string, unknown> = { status: rhea().types.wrap_int(answer.status) };
    if (answer.version !== undefined) annotationsOut.version = rhea().types.wrap_long(answer.version);
    this.send(
      key,
      responses,
      { ...twinMessage(answer.body, annotationsOut), correlation_id: correlationId },
      'the answer to a twin request',
    );
  }

  /**
   * Sends to a device's receiving link, or holds the message until the device gives credit (a request
   * may come before the credit for its answer: the SDKs write both at once, the transfer first). The
   * hub holds a few for a link, in order; past that the device is not reading and misses what follows
   * (as one that drops in between does: it reads the twin with its next GET).
   */
  private send(key: IdentityKey, link: Sender, message: Message, what: string): void {
    if (!link.is_open()) return;
    const waiting = this.waiting.get(link);
    if (!waiting && link.sendable()) return void link.send(message);
    if (waiting && waiting.length >= MAX_WAITING) {
      this.log.info('amqp', `dropped ${what} for ${identityId(key)}: its link '${link.name}' gives no credit`);
      return;
    }
    if (waiting) waiting.push(message);
    else this.waiting.set(link, [message]);
  }

  /** Sends what waited for credit, as far as the credit goes. */
  private flush(link: Sender): void {
    const waiting = this.waiting.get(link);
    while (waiting && waiting.length > 0 && link.sendable()) link.send(waiting.shift()!);
    if (waiting?.length === 0) this.waiting.delete(link);
  }

  private subscribe(id: string, link: Sender): void {
    let links = this.subscribed.get(id);
    if (!links) this.subscribed.set(id, (links = new Set()));
    links.add(link);
    this.subscribers.set(link, id);
  }

  private unsubscribe(link: Sender): void {
    const id = this.subscribers.get(link);
    if (id === undefined) return;
    this.subscribers.delete(link);
    const links = this.subscribed.get(id);
    if (links?.delete(link) && links.size === 0) this.subscribed.delete(id);
  }

  private handle(key: IdentityKey, responses: Sender, operation: string, resource: unknown, body: unknown): Answer {
    if (operation === 'GET' && resource === undefined) return { status: 200, body: this.twins.deviceView(key) };
    if (operation === 'PATCH' && resource === REPORTED) return { status: 204, version: this.twins.patchReported(key, parseJson(body)) };
    if ((operation === 'PUT' || operation === 'DELETE') && resource === DESIRED_NOTIFICATIONS) {
      if (operation === 'PUT') this.subscribe(identityId(key), responses);
      else this.unsubscribe(responses);
      return { status: 200 };
    }
    throw hubErrors.argumentInvalid(
      `The twin request '${operation}' on '${String(resource ?? '')}' is not one IoT Hub serves (GET; PATCH ${REPORTED}; PUT or DELETE ${DESIRED_NOTIFICATIONS}).`,
    );
  }
}

/**
 * The device's receiving link paired with its sending link: on the same connection, to the same
 * address, with the same channel correlation id.
 */
function responseLink(requests: Receiver): Sender | undefined {
  const address = requests.target?.address;
  const channel = requests.properties?.[CHANNEL];
  return requests.connection.find_sender(
    (s: Sender) => s.is_open() && s.source?.address === address && s.properties?.[CHANNEL] === channel,
  ) as Sender | undefined;
}

/**
 * A twin message: JSON in a data section, empty when there is nothing to say (the C SDK takes no other
 * kind of body), with its annotations.
 */
function twinMessage(body: unknown, annotations: Record<string, unknown>): Message {
  return {
    message_annotations: annotations,
    body: rhea().message.data_section(body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body))),
  } as Message;
}

function parseJson(body: unknown): unknown {
  try {
    return JSON.parse(bodyBytes(body).toString('utf8'));
  } catch {
    throw hubErrors.argumentInvalid('The reported properties patch is not valid JSON.');
  }
}

function identityId(key: IdentityKey): string {
  return key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId;
}
