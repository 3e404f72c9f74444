import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Delivery, EventContext, Message, Receiver, Sender } from 'rhea';
import { RecordSender } from './record-sender.js';
import { rhea } from '../amqp/rhea.js';
import { AmqpConnections, type AmqpConnectionState } from '../amqp/amqp-connections.js';
import type { VerifyToken } from '../events/cbs.js';
import { HubError, hubErrors } from '../errors.js';
import { amqpError, bodyBytes, idText } from '../amqp/amqp-values.js';
import type { DeviceQueues } from '../cloud-to-device/device-queues.js';
import type { FileNotification, FileUploads } from '../file-upload/file-uploads.js';
import type { AmqpDeviceLinks } from '../device-gateway/amqp-device-links.js';
import type { HubLog } from '../log.js';
import type { Throttle } from '../throttling.js';
import type { UnauthenticatedConnections } from '../unauthenticated-connections.js';

// IoT Hub's service-facing AMQP endpoint, as azure-iothub's Client uses it: AMQPS on the hub's TLS
// port (dispatched there by its first bytes) or AMQP over WebSockets, a put-token on $cbs with a
// shared access policy's token (ServiceConnect), then a sending link to /messages/devicebound and a
// receiving link on /messages/serviceBound/feedback. Devices' and modules' links (`/devices/...`) on
// the same connections go to the device gateway's AmqpDeviceLinks, as on IoT Hub's one host.

const DEVICEBOUND = '/messages/devicebound';
const FEEDBACK = '/messages/servicebound/feedback';
const FILE_NOTIFICATIONS = '/messages/servicebound/filenotifications';
/** Feedback records per feedback message (IoT Hub batches them). */
const FEEDBACK_BATCH = 100;
const FEEDBACK_CONTENT_TYPE = 'application/vnd.microsoft.iothub.feedback.json';
/** One notification per message, as IoT Hub sends them. */
const NOTIFICATION_BATCH = 1;

export interface ServiceAmqpOptions {
  hostName: string;
  queues: DeviceQueues;
  verifyToken: VerifyToken;
  unauthenticated: UnauthenticatedConnections;
  log: HubLog;
  /** The tier's throttles: each message sent to /messages/devicebound is a cloud-to-device send. */
  throttle?: Throttle;
  /** Where the links of devices and modules go. */
  devices?: AmqpDeviceLinks;
  /** File upload, when the hub has a storage account: its notifications go to /messages/serviceBound/filenotifications. */
  fileUploads?: FileUploads;
  /** How long a connection may go without a token accepted on $cbs. Default IoT Hub's 20 s. */
  authenticationTimeoutMs?: number;
}

export class ServiceAmqpEndpoint {
  private readonly connections: AmqpConnections;
  private readonly feedback: RecordSender<Record<string, string>>;
  private readonly notifications?: RecordSender<FileNotification>;

  constructor(private readonly options: ServiceAmqpOptions) {
    const { hostName, queues, devices, fileUploads } = options;
    this.feedback = new RecordSender(
      { waiting: (n) => queues.feedback(n), settle: (seqs) => queues.settleFeedback(seqs) },
      FEEDBACK_BATCH,
      (records) => serviceMessage(hostName, FEEDBACK_CONTENT_TYPE, records),
    );
    if (fileUploads) {
      this.notifications = new RecordSender(
        { waiting: (n) => fileUploads.notifications(n), settle: (seqs) => fileUploads.settle(seqs) },
        NOTIFICATION_BATCH,
        ([notification]) => serviceMessage(hostName, 'application/json', notification),
      );
      fileUploads.on('notification', () => this.notifications!.send());
    }
    this.connections = new AmqpConnections({
      containerId: `iothub-tut-${hostName}`,
      listener: 'AMQPS',
      verifyToken: options.verifyToken,
      unauthenticated: options.unauthenticated,
      log: options.log,
      authenticationTimeoutMs: options.authenticationTimeoutMs,
      // Each cloud-to-device message is accepted once it is queued (committed), or rejected with IoT Hub's
      // error; each device-to-cloud message once it is in the event log.
      receiverOptions: { autoaccept: false },
      expiredClaim: (link, path) => ({
        condition: 'amqp:unauthorized-access',
        description: `The link '${link.name}' is detached: the token that authorised '${path}' expired (put a new token on $cbs).`,
      }),
      linkGone: (link) => {
        this.feedback.gone(link as Sender);
        this.notifications?.gone(link as Sender);
        devices?.gone(link);
      },
      receiverOpen: (link, state) => (devices?.owns(link) ? devices.open(link, state) : this.openDevicebound(link, state)),
      senderOpen: (link, state) => (devices?.owns(link) ? devices.open(link, state) : this.openServiceBound(link, state)),
    });
    devices?.serve(this.connections);
    queues.on('feedback', () => this.feedback.send());
  }

  /** A client's stream (the TLS socket, or a WebSocket's) and the socket beneath. */
  accept(stream: Duplex, peer: Socket): void {
    this.connections.accept(stream, peer);
  }

  close(): Promise<void> {
    return this.connections.close();
  }

  private openDevicebound(link: Receiver, state: AmqpConnectionState): void {
    const address = link.target?.address ?? '';
    if (address.toLowerCase() !== DEVICEBOUND) {
      return this.connections.refuse(
        link,
        'amqp:not-found',
        `'${address}' is not an endpoint of this hub; cloud-to-device messages go to '${DEVICEBOUND}'.`,
      );
    }
    if (!this.admit(link, state, `${this.options.hostName}${DEVICEBOUND}`)) return;
    link.set_target({ address });
    link.on('message', (context: EventContext) => this.enqueue(context.message!, context.delivery!));
  }

  /** Authorises a link to `path` when a token put on $cbs covers it; else refuses it. */
  private admit(link: Sender | Receiver, state: AmqpConnectionState, path: string): boolean {
    if (!state.claims.covers(path, 'ServiceConnect')) {
      this.connections.refuse(
        link,
        'amqp:unauthorized-access',
        `Unauthorized: put a token with ServiceConnect for '${path}' on $cbs first.`,
      );
      return false;
    }
    this.connections.authorise(state, link, path);
    return true;
  }

  private enqueue(message: Message, delivery: Delivery): void {
    try {
      if (this.options.throttle && !this.options.throttle.allow('c2d')) {
        throw hubErrors.throttled('Cloud-to-device sends are throttled for this hub tier; back off and retry.');
      }
      const deviceId = targetDevice(message.to);
      const properties: Record<string, string> = {};
      let ack: string | undefined;
      for (const [name, value] of Object.entries(message.application_properties ?? {})) {
        if (name === 'iothub-ack') ack = String(value);
        else properties[name] = String(value);
      }
      const expiry = message.absolute_expiry_time;
      this.options.queues.enqueue({
        deviceId,
        ...optional('messageId', idText(message.message_id)),
        ...optional('correlationId', idText(message.correlation_id)),
        ...optional('userId', idText(message.user_id, true)),
        ...optional('ack', ack),
        ...optional('contentType', message.content_type),
        ...optional('contentEncoding', message.content_encoding),
        properties,
        body: bodyBytes(message.body),
        ...(expiry !== undefined ? { expiryTimeUtc: new Date(expiry as Date | number) } : {}),
      });
      delivery.accept();
    } catch (error) {
      const refused = amqpError(error);
      if (refused.condition === 'amqp:internal-error')
        this.options.log.error('amqp', `could not queue a cloud-to-device message: ${refused.description}`);
      else this.options.log.info('amqp', `refused a cloud-to-device message: ${refused.description}`);
      delivery.reject(refused);
    }
  }

  private openServiceBound(link: Sender, state: AmqpConnectionState): void {
    const address = link.source?.address ?? '';
    const lower = address.toLowerCase();
    if (lower === FILE_NOTIFICATIONS) {
      if (!this.admit(link, state, `${this.options.hostName}${FILE_NOTIFICATIONS}`)) return;
      link.set_source({ address });
      if (this.notifications) return this.notifications.add(link);
      // A hub without a storage account has no file upload (devices' requests for one are refused),
      // so the link stays open and silent, as on an IoT hub nobody uploads to: a service app that
      // listens for notifications runs unchanged. (Refused, the SDK's close, if it overlapped the
      // refusal, waited 45 s for a detach.)
      this.options.log.info(
        'amqp',
        'a service listens for file upload notifications: this hub has no storage account for file upload (hub start --file-upload), so none will come',
      );
      return;
    }
    if (lower !== FEEDBACK) {
      return this.connections.refuse(
        link,
        'amqp:not-found',
        `'${address}' is not an endpoint of this hub; delivery feedback is on '/messages/serviceBound/feedback'.`,
      );
    }
    if (!this.admit(link, state, `${this.options.hostName}${FEEDBACK}`)) return;
    link.set_source({ address });
    this.feedback.add(link);
  }
}

/** A message of the service's receiving links: JSON, from the hub (its name as the user id). */
function serviceMessage(hostName: string, contentType: string, body: unknown): Message {
  return {
    message_id: randomUUID(),
    user_id: Buffer.from(hostName) as unknown as string, // binary on the wire; rhea's typings say string
    content_type: contentType,
    content_encoding: 'utf-8',
    message_annotations: { 'iothub-enqueuedtime': new Date() },
    body: rhea().message.data_section(Buffer.from(JSON.stringify(body))),
  };
}

/** `/devices/{id}/messages/devicebound`, the `to` the service SDK sets: the device id. */
function targetDevice(to: string | undefined): string {
  const match = /^\/devices\/([^/]+)\/messages\/devicebound$/i.exec(to ?? '');
  if (!match) {
    throw new HubError(
      400,
      400004,
      'ArgumentInvalid',
      `The message's 'to' must be /devices/{deviceId}/messages/devicebound, not '${to ?? ''}' (modules have no cloud-to-device queue).`,
    );
  }
  return decodeURIComponent(match[1]!);
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
