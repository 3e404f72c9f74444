import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator, DeviceAuthFailure } from '../auth/authenticator.js';
import { HubError, hubErrors } from '../errors.js';
import type { D2CMessage, D2CSink } from '../events/event-log.js';
import type { Registry } from '../registry/registry.js';
import type { Throttle } from '../throttling.js';
import type { HubLog } from '../log.js';
import { readBody, send } from '../service-api/http-handler.js';
import { presentedCertificates } from '../auth/client-certificate.js';
import { decodeSegment } from '../service-api/router.js';
import { MAX_D2C_MESSAGE_BYTES } from './telemetry-topics.js';
import type { MessageLocks } from '../cloud-to-device/message-locks.js';
import type { C2dRecord } from '../store/c2d-store.js';
import type { FileUploads } from '../file-upload/file-uploads.js';

// IoT Hub's HTTPS device API ("Device - Send Device Event", "Device - Receive/Complete/Abandon
// Device Bound Notification", "Device - Create File Upload Sas Uri", "Device - Update File Upload
// Status" in the REST reference), as azure-iot-device-http and the C# SDK's HTTP
// transport call it. A module posts its messages to /devices/{id}/modules/{mid}/messages/events, as
// the Java SDK's HTTPS transport does (azure-iot-device-http posts them to the device's path, with the
// module's token, which does not reach the device: 401); modules have no cloud-to-device queue.

/**
 * The paths this gateway serves: /devices/{id}/messages/events, /devices/{id}/modules/{mid}/messages/events
 * and /devices/{id}/messages/deviceBound[/...].
 */
const DEVICE_PATH = /^\/devices\/([^/]+)\/(?:modules\/([^/]+)\/messages\/events\/?|messages\/(?:events\/?|(devicebound)(\/.*)?))$/i;

/** File upload: /devices/{id}/files, and /devices/{id}/files/notifications[/{correlationId}]. */
const FILES_PATH = /^\/devices\/([^/]+)\/files(?:\/(notifications)(?:\/([^/]+))?)?\/?$/i;

/** What follows deviceBound: /{etag} (complete, or reject with ?reject) or /{etag}/abandon. */
const LOCK_PATH = /^\/([^/]+)(\/abandon)?\/?$/i;

/** True for a request to the device API (the HTTP server sends those here, everything else to the service API). */
export function isDeviceMessagingRequest(url: string | undefined): boolean {
  const path = pathOf(url ?? '/');
  return DEVICE_PATH.test(path) || FILES_PATH.test(path);
}

/** The largest body of a file upload request or status: a blob name or a status description. */
const MAX_FILE_REQUEST_BYTES = 64 * 1024;

/** The Content-Type of a batch: a JSON array of messages, each body base64-encoded unless it says otherwise. */
export const BATCH_CONTENT_TYPE = 'application/vnd.microsoft.iothub.json';

const APP_PROPERTY_PREFIX = 'iothub-app-';

// The system properties a device sets as headers (or, in a batch, as properties), as the SDKs write
// them (their names are case-insensitive). Others (iothub-ack, dt-subject) are not carried, nor
// iothub-to: azure-iot-device-http sends it on every request as the request's own path.
const SYSTEM: Record<
  string,
  'messageId' | 'correlationId' | 'userId' | 'contentType' | 'contentEncoding' | 'expiryTime' | 'creationTime' | 'interfaceId'
> = {
  'iothub-messageid': 'messageId',
  'iothub-correlationid': 'correlationId',
  'iothub-userid': 'userId',
  'iothub-contenttype': 'contentType',
  'iothub-contentencoding': 'contentEncoding',
  'iothub-expiry': 'expiryTime',
  'iothub-creation-time-utc': 'creationTime',
  'iothub-interface-id': 'interfaceId',
};

const notSigned = (who: string) => `The SharedAccessSignature is not signed with a key of ${who} or of a policy with DeviceConnect`;
const notItsCertificate = (who: string) => `The client certificate is not a credential of ${who}`;

// Why a request is refused, as its 401 says, of `who` ("device 'd1'", "module 'm1' of device 'd1'"). An
// unknown identity reads as a wrong key, so that a caller without a key learns nothing of which exist;
// only a valid key learns that its identity is disabled.
const AUTH_FAILURE: Record<DeviceAuthFailure, (who: string) => string> = {
  malformed: () => 'The SharedAccessSignature is malformed',
  expired: () => 'The SharedAccessSignature has expired',
  wrongAudience: (who) => `The SharedAccessSignature is not scoped to ${who}`,
  badSignature: notSigned,
  unknownIdentity: notSigned,
  disabled: (who) => `${who[0]!.toUpperCase()}${who.slice(1)} is disabled`,
  // A request without a token is judged by the client certificate of its TLS connection.
  notCertificateIdentity: notItsCertificate,
  thumbprintMismatch: notItsCertificate,
  untrustedCertificate: () => 'The client certificate does not chain to a CA this hub trusts, or is out of date',
  wrongCommonName: notItsCertificate,
};

/**
 * Devices over HTTPS: each request carries the device's SAS token (checked as an MQTT connect's is);
 * a message, or a batch of them, is stamped as MQTT's are and answered 204 once it is in the event log
 * (a batch all or none). Cloud-to-device messages are polled: a GET takes the oldest unlocked one
 * (204 when there is none) under a lock whose token is its ETag, which settles it.
 */
export class HttpsGateway {
  constructor(
    private readonly auth: Authenticator,
    private readonly d2c: D2CSink,
    private readonly registry: Registry,
    private readonly c2d: MessageLocks,
    private readonly log: HubLog,
    private readonly throttle?: Throttle,
    private readonly fileUploads?: FileUploads,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const trackingId = randomUUID().replace(/-/g, '');
    const headers = { 'iothub-tracking-id': trackingId };
    try {
      const files = FILES_PATH.exec(pathOf(req.url ?? '/'));
      if (files) return await this.files(req, res, files, headers);
      const [, encodedId, encodedModuleId, deviceBound, lockPath] = DEVICE_PATH.exec(pathOf(req.url ?? '/'))!;
      const deviceId = decodeSegment(encodedId!);
      const moduleId = encodedModuleId === undefined ? undefined : decodeSegment(encodedModuleId);
      const authMethod = this.authenticate(req, deviceId, moduleId);
      // Each request authenticates: its lastActivityTime, whether it sends or polls.
      this.registry.recordActivity({ deviceId, moduleId });
      if (deviceBound) return this.deviceBound(req, res, deviceId, lockPath, headers);
      if (req.method !== 'POST') throw hubErrors.methodNotAllowed(`${req.method} is not allowed on ${pathOf(req.url ?? '/')}`);
      await this.receive(req, deviceId, moduleId, authMethod);
      res.writeHead(204, headers).end();
    } catch (err) {
      const error = err instanceof HubError ? err : hubErrors.serverError('The hub failed to handle the request');
      if (!(err instanceof HubError))
        this.log.error('rest', `device ${req.method} ${req.url} failed (tracking id ${trackingId}): ${(err as Error)?.stack ?? err}`);
      else if (this.log.enabled('info'))
        this.log.info(
          'rest',
          `device ${req.method} ${req.url}: ${error.status} ${error.code} ${error.message} (tracking id ${trackingId})`,
        );
      send(res, error.status, error.toBody(trackingId), { ...headers, 'iothub-errorcode': error.code });
    }
  }

  /**
   * POST files: a SAS URI for a blob of the hub's storage account (200). POST files/notifications:
   * the upload's outcome (204). A hub without a storage account refuses both, as an IoT hub whose
   * file upload is not configured does.
   */
  private async files(req: IncomingMessage, res: ServerResponse, path: RegExpExecArray, headers: Record<string, string>): Promise<void> {
    const [, encodedId, notifications, encodedCorrelationId] = path;
    const deviceId = decodeSegment(encodedId!);
    this.authenticate(req, deviceId);
    this.registry.recordActivity({ deviceId });
    if (req.method !== 'POST') throw hubErrors.methodNotAllowed(`${req.method} is not allowed on ${pathOf(req.url ?? '/')}`);
    if (!this.fileUploads) {
      throw hubErrors.argumentInvalid(
        'File upload is not configured on this hub: it has no storage account (start it with --file-upload <storage connection string>; README, "File upload")',
      );
    }
    const body = await readBody(req, MAX_FILE_REQUEST_BYTES, 'the limit for a file upload request');
    if (notifications) {
      const correlationId = encodedCorrelationId === undefined ? undefined : decodeSegment(encodedCorrelationId);
      await this.fileUploads.complete(deviceId, body, correlationId);
      return void res.writeHead(204, headers).end();
    }
    if (this.throttle && !this.throttle.allow('fileUpload')) {
      throw hubErrors.throttled('File upload initiations are throttled for this hub tier; back off and retry.');
    }
    send(res, 200, await this.fileUploads.begin(deviceId, body), headers);
  }

  /**
   * The request's token must be the identity's own (or a DeviceConnect policy's); a request without
   * one is judged by its TLS connection's client certificate, as an MQTT connect without a password
   * is. IoT Hub answers 401 otherwise.
   */
  private authenticate(req: IncomingMessage, deviceId: string, moduleId?: string): 'sas' | 'x509' {
    const authorization = req.headers.authorization;
    const chain = authorization ? undefined : presentedCertificates(req.socket);
    if (!authorization && !chain) {
      throw hubErrors.unauthorized('The request has no Authorization header with a SharedAccessSignature, and no client certificate');
    }
    const failure = chain
      ? this.auth.authenticateCertificate(chain, deviceId, moduleId)
      : this.auth.authenticateDevice(authorization!, deviceId, moduleId);
    if (failure) {
      const who = moduleId === undefined ? `device '${deviceId}'` : `module '${moduleId}' of device '${deviceId}'`;
      // An unknown identity reads as a certificate that is not its own, as it reads as a wrong key.
      const reason = chain && failure === 'unknownIdentity' ? 'thumbprintMismatch' : failure;
      throw hubErrors.unauthorized(chain && failure === 'expired' ? 'The client certificate is out of date' : AUTH_FAILURE[reason](who));
    }
    return chain ? 'x509' : 'sas';
  }

  /**
   * GET deviceBound: the next message (200) or none (204). DELETE deviceBound/{etag}: complete it, or
   * reject it with ?reject. POST deviceBound/{etag}/abandon: abandon it. A settlement answers 204.
   */
  private deviceBound(
    req: IncomingMessage,
    res: ServerResponse,
    deviceId: string,
    lockPath: string | undefined,
    headers: Record<string, string>,
  ): void {
    const path = `/devices/${deviceId}/messages/deviceBound`;
    if (!lockPath || lockPath === '/') {
      if (req.method !== 'GET') throw hubErrors.methodNotAllowed(`${req.method} is not allowed on ${path}`);
      if (this.throttle && !this.throttle.allow('c2dReceive')) {
        throw hubErrors.throttled('Cloud-to-device receives over HTTPS are throttled for this hub tier; poll less often.');
      }
      const received = this.c2d.receive(deviceId);
      if (!received) return void res.writeHead(204, headers).end();
      const { message, lockToken } = received;
      res.writeHead(200, { ...headers, ...deviceBoundHeaders(message, lockToken) }).end(message.body);
      return;
    }
    const [, encodedToken, abandon] = LOCK_PATH.exec(lockPath) ?? [];
    if (!encodedToken) throw hubErrors.notFound(`There is no ${path}${lockPath}`);
    const lockToken = decodeSegment(encodedToken);
    const expected = abandon ? 'POST' : 'DELETE';
    if (req.method !== expected) throw hubErrors.methodNotAllowed(`${req.method} is not allowed on ${path}/{etag}${abandon ?? ''}`);
    const reject = new URLSearchParams(queryOf(req.url ?? '')).has('reject');
    this.c2d.settle(deviceId, lockToken, abandon ? 'abandon' : reject ? 'reject' : 'complete');
    res.writeHead(204, headers).end();
  }

  private async receive(req: IncomingMessage, deviceId: string, moduleId: string | undefined, authMethod: 'sas' | 'x509'): Promise<void> {
    const body = await readBody(req, MAX_D2C_MESSAGE_BYTES, "IoT Hub's limit for a message or a batch");
    const stamps: D2CMessage = {
      deviceId,
      ...(moduleId === undefined ? {} : { moduleId }),
      body,
      properties: {},
      authMethod,
      authGenerationId: this.registry.find(deviceId, moduleId)?.generationId,
    };
    const isBatch = (req.headers['content-type'] ?? '').toLowerCase().split(';')[0]!.trim() === BATCH_CONTENT_TYPE;
    const messages = isBatch
      ? parseBatch(body).map((entry) => withProperties({ ...stamps, body: entry.body, properties: {} }, Object.entries(entry.properties)))
      : [withProperties(stamps, headerPairs(req.rawHeaders))];
    // Each message of a batch is a device-to-cloud send of the throttle.
    if (this.throttle && !this.throttle.allow('d2c', messages.length)) {
      throw hubErrors.throttled('Device-to-cloud messages are throttled for this hub tier; back off and retry.');
    }
    await (messages.length === 1 ? this.d2c.append(messages[0]!) : this.d2c.appendMany(messages));
  }
}

/**
 * The request's headers as name-value pairs, names as the device wrote them: an application
 * property's name keeps its case ("IoT Hub never modifies these properties"), where Node's
 * req.headers would lower-case it.
 */
function headerPairs(rawHeaders: string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  return pairs;
}

/**
 * The message with the properties among `pairs`: `iothub-app-{name}` ones as application properties,
 * the system ones in SYSTEM; the rest are not the message's. Refused (413) over IoT Hub's 256 KB, body
 * and properties together, as on MQTT.
 */
function withProperties(message: D2CMessage, pairs: Array<[string, string]>): D2CMessage {
  let size = message.body.length;
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    const system = SYSTEM[lower];
    if (system) message[system] = value;
    else if (lower.startsWith(APP_PROPERTY_PREFIX)) message.properties[name.slice(APP_PROPERTY_PREFIX.length)] = value;
    else continue;
    size += Buffer.byteLength(name) + Buffer.byteLength(value);
  }
  if (size > MAX_D2C_MESSAGE_BYTES) {
    throw hubErrors.messageTooLarge(
      `The message is ${size} bytes; IoT Hub accepts up to ${MAX_D2C_MESSAGE_BYTES} bytes (body and properties).`,
    );
  }
  return message;
}

interface BatchEntry {
  body: Buffer;
  properties: Record<string, string>;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes UTF-8 strictly: invalid bytes are refused, not replaced. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A batch: `[{"body": "<base64>", "base64Encoded": true, "properties": {"iothub-app-k": "v"}}, ...]`.
 * base64Encoded defaults to true (the SDKs leave it out); false takes the body as UTF-8 text.
 */
function parseBatch(raw: Buffer): BatchEntry[] {
  let batch: unknown;
  try {
    batch = JSON.parse(utf8.decode(raw));
  } catch {
    throw hubErrors.argumentInvalid(`A batch (Content-Type ${BATCH_CONTENT_TYPE}) must be a JSON array of messages in UTF-8`);
  }
  if (!Array.isArray(batch) || batch.length === 0) throw hubErrors.argumentInvalid('A batch must be a JSON array of at least one message');
  return batch.map((entry: unknown, i): BatchEntry => {
    const refuse = (why: string) => hubErrors.argumentInvalid(`Message ${i} of the batch ${why}`);
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw refuse('is not an object');
    const { body, base64Encoded = true, properties = {} } = entry as Record<string, unknown>;
    if (typeof body !== 'string') throw refuse('has no "body" string');
    if (typeof base64Encoded !== 'boolean') throw refuse('has a "base64Encoded" that is not true or false');
    if (base64Encoded && (!BASE64.test(body) || body.length % 4 !== 0))
      throw refuse('has a "body" that is not base64 (set "base64Encoded": false for text)');
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties))
      throw refuse('has "properties" that are not an object');
    for (const value of Object.values(properties))
      if (typeof value !== 'string') throw refuse('has a property whose value is not a string');
    return { body: Buffer.from(body, base64Encoded ? 'base64' : 'utf8'), properties: properties as Record<string, string> };
  });
}

/**
 * A polled message as IoT Hub's headers carry it: its system properties as iothub-* headers (the
 * delivery count is of the deliveries before this one, as AMQP's), its application properties as
 * iothub-app-{name}, and its lock token as the ETag, in quotes.
 */
function deviceBoundHeaders(message: C2dRecord, lockToken: string): Record<string, string> {
  const system: Array<[string, string | undefined]> = [
    ['iothub-messageid', message.messageId],
    ['iothub-to', `/devices/${message.deviceId}/messages/deviceBound`],
    ['iothub-correlationid', message.correlationId],
    ['iothub-userid', message.userId],
    ['iothub-contenttype', message.contentType],
    ['iothub-contentencoding', message.contentEncoding],
    ['iothub-expiry', new Date(message.expiryMs).toISOString()],
    ['iothub-enqueuedtime', new Date(message.enqueuedMs).toISOString()],
    ['iothub-deliverycount', String(message.deliveryCount - 1)],
    ['iothub-sequencenumber', String(message.seq)],
    ['iothub-ack', message.ack],
  ];
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', ETag: `"${lockToken}"` };
  for (const [name, value] of system) if (value !== undefined) headers[name] = headerValue(value);
  for (const [name, value] of Object.entries(message.properties)) headers[APP_PROPERTY_PREFIX + headerName(name)] = headerValue(value);
  return headers;
}

// A header holds ASCII only, and its name only token characters (RFC 9110), where a property sent over
// AMQP may hold anything: what a header cannot hold is percent-encoded, as in MQTT's property bags.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VISIBLE_ASCII = /^[\x20-\x7e]*$/;
const percentEncoded = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const headerName = (name: string) => (TOKEN.test(name) ? name : percentEncoded(name));
const headerValue = (value: string) => (VISIBLE_ASCII.test(value) ? value : percentEncoded(value));

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

function queryOf(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? '' : url.slice(query + 1);
}
