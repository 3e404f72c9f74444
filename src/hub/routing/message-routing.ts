import { randomUUID } from 'node:crypto';
import { connectionStamps, definedOnly, type D2CMessage, type D2CSink, type EventLog } from '../events/event-log.js';
import { silentLog, type HubLog } from '../log.js';
import { valueReader } from '../query/paths.js';
import { compileRouteCondition, type RouteCondition, type RoutedMessageView } from '../query/route-condition.js';
import { NOTIFICATION_KINDS, type Notification } from './notifications.js';
import {
  BUILT_IN_ENDPOINT,
  SILENT_SOURCES,
  type EnrichmentSettings,
  type RoutingSettings,
  type RoutingSource,
} from './routing-settings.js';
import type { StorageEndpoint, StorageRecord } from './storage-endpoint.js';

interface Identity {
  deviceId: string;
  moduleId?: string;
}

/** What routing reads of an identity's twin: its tags and properties (IoT Hub's `$twin`). */
export type TwinOf = (key: Identity) => { tags: unknown; properties: { desired: unknown; reported: unknown } } | undefined;

interface CompiledRoute {
  name: string;
  condition: RouteCondition;
  endpoints: string[];
}

/** Where routing delivers: the built-in endpoint (whose partitions storage endpoints' blobs follow), and storage endpoints by name. */
export interface RoutingEndpoints {
  events: EventLog;
  storage: ReadonlyMap<string, StorageEndpoint>;
}

/**
 * IoT Hub's message routing: a device message goes to the endpoints of every enabled DeviceMessages
 * route whose condition holds for it, each endpoint once, or, when none does, through the fallback
 * route to the built-in endpoint if that is enabled; otherwise it is dropped, as on IoT Hub (the
 * device's send still succeeds). IoT Hub's own events (twin changes, lifecycle, connection state) go
 * only where a route of their source takes them. Endpoints: the built-in `events`, and storage
 * containers. Enrichments are stamped, as application properties, on what goes to their endpoints.
 */
export class MessageRouting implements D2CSink {
  private readonly routes = new Map<RoutingSource, CompiledRoute[]>();
  /** The fallback route, when it is enabled: to the built-in endpoint. */
  private readonly fallback?: CompiledRoute;
  /** Each endpoint's enrichments (an endpoint without any is absent). */
  private readonly enrichments = new Map<string, EnrichmentSettings[]>();

  /** Throws a HubError (400 SqlQueryInvalid) naming the route whose condition does not parse. */
  constructor(
    settings: RoutingSettings,
    private readonly endpoints: RoutingEndpoints,
    private readonly twinOf: TwinOf,
    private readonly hubName: string,
    private readonly log: HubLog = silentLog(),
    private readonly now: () => Date = () => new Date(),
  ) {
    for (const route of settings.routes) {
      if (!route.isEnabled) continue;
      const list = this.routes.get(route.source) ?? [];
      list.push({ name: route.name, condition: compiled(route.condition, `route '${route.name}'`), endpoints: route.endpointNames });
      this.routes.set(route.source, list);
    }
    if (settings.fallback.isEnabled) {
      this.fallback = {
        name: '$fallback',
        condition: compiled(settings.fallback.condition, 'the fallback route'),
        endpoints: [BUILT_IN_ENDPOINT],
      };
    }
    for (const enrichment of settings.enrichments) {
      for (const endpoint of enrichment.endpointNames)
        this.enrichments.set(endpoint, [...(this.enrichments.get(endpoint) ?? []), enrichment]);
    }
  }

  /** What the hub says at start: the routes that are on, and those whose source it never emits. */
  describe(): string[] {
    const lines: string[] = [];
    for (const [source, routes] of this.routes) {
      for (const route of routes) {
        lines.push(
          SILENT_SOURCES.has(source)
            ? `route ${route.name} (${source}) gets nothing: the local hub does not emit ${source}`
            : `route ${route.name} sends ${source} to ${route.endpoints.join(', ')}`,
        );
      }
    }
    for (const endpoint of this.endpoints.storage.values()) lines.push(endpoint.describe());
    lines.push(
      this.fallback ? `the fallback route sends device messages no route takes to ${BUILT_IN_ENDPOINT}` : 'the fallback route is off',
    );
    return lines;
  }

  /** Whether a route may take events of this source: the hub builds none otherwise. */
  wants(source: Notification['source']): boolean {
    return this.routes.has(source);
  }

  async append(msg: D2CMessage): Promise<unknown> {
    const { toEvents, stored } = this.route(msg);
    return Promise.all([stored, toEvents && this.endpoints.events.append(toEvents)]);
  }

  async appendMany(msgs: D2CMessage[]): Promise<unknown> {
    // The built-in endpoint takes a request's messages all or none, as without routes.
    const routed = msgs.map((msg) => this.route(msg));
    const toEvents = routed.flatMap((r) => (r.toEvents ? [r.toEvents] : []));
    return Promise.all([...routed.map((r) => r.stored), toEvents.length > 0 && this.endpoints.events.appendMany(toEvents)]);
  }

  /** Writes the storage endpoints' waiting messages to their blobs now (as each endpoint's batch timer does). */
  async flushStorage(): Promise<void> {
    await Promise.all([...this.endpoints.storage.values()].map((endpoint) => endpoint.flush()));
  }

  /** Starts the storage endpoints' batch timers. */
  start(): void {
    for (const endpoint of this.endpoints.storage.values()) endpoint.start();
  }

  /** Stops the storage endpoints' timers, after writing a batch of what waits. */
  async close(): Promise<void> {
    await Promise.all([...this.endpoints.storage.values()].map((endpoint) => endpoint.close()));
  }

  /**
   * Routes one of IoT Hub's own events. Called from the registry's, the twins' and presence's events: a
   * failure, to build the event or to store it, is logged and never reaches the operation that caused it.
   */
  notify(build: () => Notification | undefined): void {
    try {
      const notification = build();
      if (notification) this.deliverNotification(notification);
    } catch (err) {
      this.log.error('routing', `could not route one of the hub's own events: ${(err as Error)?.stack ?? err}`);
    }
  }

  private deliverNotification(notification: Notification): void {
    const routes = this.routes.get(notification.source);
    if (!routes) return;
    const kind = NOTIFICATION_KINDS[notification.source];
    const { deviceId, moduleId } = notification;
    const enqueued = this.now();
    const properties: Record<string, string> = {
      hubName: this.hubName,
      deviceId,
      ...(moduleId ? { moduleId } : {}),
      operationTimestamp: enqueued.toISOString(),
      'iothub-message-schema': kind.schema,
      opType: notification.opType,
    };
    const { modelId } = notification;
    const system = {
      contentType: kind.contentType,
      contentEncoding: 'utf-8',
      correlationId: randomUUID().replaceAll('-', '').slice(0, 12),
      userId: this.hubName,
      connectionDeviceId: deviceId,
      ...(moduleId ? { connectionModuleId: moduleId } : {}),
      ...(modelId ? { 'dt-dataschema': modelId } : {}),
    };
    const view: RoutedMessageView = {
      system: { ...system, enqueuedTime: enqueued.toISOString() },
      app: properties,
      body: () => notification.body,
      twin: once(() => this.twinOf(notification)),
    };
    const targets = this.targetsOf(routes, view);
    if (targets.size === 0) return;
    const body = Buffer.from(JSON.stringify(notification.body));
    const event = {
      source: kind.messageSource,
      deviceId,
      ...(moduleId ? { moduleId } : {}),
      body,
      contentType: kind.contentType,
      ...(modelId ? { modelId } : {}),
      correlationId: system.correlationId,
      userId: this.hubName,
    };
    // "Message enrichments don't apply to digital twin change events."
    const enrichable = notification.source !== 'DigitalTwinChangeEvents';
    const deliveries = [...targets].map(async (endpoint) => {
      const stamped = enrichable ? this.enriched(properties, notification, endpoint) : properties;
      if (endpoint === BUILT_IN_ENDPOINT) return this.endpoints.events.appendHubEvent({ ...event, properties: stamped });
      return this.endpoints.storage.get(endpoint)!.add({
        partition: this.endpoints.events.partitionOf(deviceId),
        enqueuedTimeUtc: storageTime(enqueued),
        properties: stamped,
        systemProperties: { ...system, enqueuedTime: storageTime(enqueued), 'iothub-message-source': kind.messageSource },
        body: body.toString('base64'),
        jsonBody: true,
      });
    });
    Promise.all(deliveries).then(
      () =>
        this.log.debug(
          'routing',
          `${kind.messageSource} ${notification.opType} of ${identityName(notification)} went to ${[...targets].join(', ')}`,
        ),
      (err: unknown) =>
        this.log.error(
          'routing',
          `could not store ${kind.messageSource} of ${identityName(notification)}: ${(err as Error)?.message ?? err}`,
        ),
    );
  }

  /**
   * Where a device message goes: the message (enriched) the built-in endpoint is to get, if it takes
   * it, and the storage endpoints' records, handed over (`stored` resolves once they are in the store).
   */
  private route(msg: D2CMessage): { toEvents?: D2CMessage; stored: Promise<unknown> } {
    const enqueued = this.now();
    const view = messageView(msg, this.twinOf, enqueued);
    let targets = this.targetsOf(this.routes.get('DeviceMessages') ?? [], view);
    if (targets.size === 0 && this.fallback) targets = this.targetsOf([this.fallback], view);
    if (targets.size === 0) {
      this.log.debug(
        'routing',
        `a message of ${identityName(msg)} matched no route and was dropped (the fallback route is off or did not hold)`,
      );
    }
    const enriched = (endpoint: string): D2CMessage =>
      this.enrichments.has(endpoint) ? { ...msg, properties: this.enriched(msg.properties, msg, endpoint) } : msg;
    const partition = this.endpoints.events.partitionOf(msg.deviceId);
    const stored = [...targets]
      .filter((endpoint) => endpoint !== BUILT_IN_ENDPOINT)
      .map((endpoint) => this.endpoints.storage.get(endpoint)!.add(storageRecord(enriched(endpoint), partition, enqueued)));
    return { ...(targets.has(BUILT_IN_ENDPOINT) ? { toEvents: enriched(BUILT_IN_ENDPOINT) } : {}), stored: Promise.all(stored) };
  }

  /** The endpoints of every route whose condition holds: each endpoint once, however many routes name it. */
  private targetsOf(routes: CompiledRoute[], view: RoutedMessageView): Set<string> {
    const targets = new Set<string>();
    for (const route of routes) {
      try {
        if (route.condition.matches(view)) for (const endpoint of route.endpoints) targets.add(endpoint);
      } catch (err) {
        this.log.warn('routing', `route '${route.name}' could not be evaluated: ${(err as Error)?.message ?? err}`);
      }
    }
    return targets;
  }

  /**
   * The properties with the endpoint's enrichments stamped on. A twin path the twin lacks is stamped as
   * written, as IoT Hub does; a value that is not a string is stamped as its JSON.
   */
  private enriched(properties: Record<string, string>, sender: Identity, endpoint: string): Record<string, string> {
    const enrichments = this.enrichments.get(endpoint);
    if (!enrichments) return properties;
    const twin = once(() => this.twinOf(sender));
    const stamped = { ...properties };
    for (const { key, value } of enrichments) {
      if (value === '$iothubname') stamped[key] = this.hubName;
      else if (value.startsWith('$twin.')) {
        const found = valueReader(value.slice('$twin.'.length).split('.'))(twin());
        stamped[key] = found === undefined ? value : typeof found === 'string' ? found : JSON.stringify(found);
      } else stamped[key] = value;
    }
    return stamped;
  }
}

function compiled(condition: string, what: string): RouteCondition {
  try {
    return compileRouteCondition(condition);
  } catch (err) {
    (err as Error).message = `The condition of ${what} is not a routing query: ${(err as Error).message}`;
    throw err;
  }
}

/**
 * A device message as routing queries see it: `$` system properties, application properties, a JSON
 * body, the sender's twin. The body is parsed and the twin read once for all the routes, when one needs them.
 */
function messageView(msg: D2CMessage, twinOf: TwinOf, enqueued: Date): RoutedMessageView {
  return {
    system: {
      contentType: msg.contentType,
      contentEncoding: msg.contentEncoding,
      messageId: msg.messageId,
      correlationId: msg.correlationId,
      userId: msg.userId,
      to: msg.to,
      connectionDeviceId: msg.deviceId,
      connectionModuleId: msg.moduleId,
      // Made only if a condition reads it: most do not, and a date's text costs as much as the rest.
      get enqueuedTime() {
        return enqueued.toISOString();
      },
      'dt-dataschema': msg.modelId,
      'dt-subject': msg.component,
    },
    app: msg.properties,
    body: once(() => jsonBody(msg)),
    twin: once(() => twinOf(msg)),
  };
}

function once<T>(read: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      done = true;
      value = read();
    }
    return value;
  };
}

const JSON_ENCODINGS: Record<string, (body: Buffer) => string> = {
  'utf-8': (body) => body.toString('utf8'),
  'utf-16': (body) => body.toString('utf16le'),
  'utf-32': (body) => {
    let text = '';
    for (let i = 0; i + 3 < body.length; i += 4) text += String.fromCodePoint(body.readUInt32LE(i));
    return text;
  },
};

/** How to read the body as text, when the message says it is JSON: content type application/json, encoding UTF-8, -16 or -32. */
function jsonDecoder(msg: D2CMessage): ((body: Buffer) => string) | undefined {
  if (msg.contentType?.split(';')[0]!.trim().toLowerCase() !== 'application/json') return undefined;
  return JSON_ENCODINGS[msg.contentEncoding?.trim().toLowerCase() ?? ''];
}

/** The body as JSON, when the message says it is. */
function jsonBody(msg: D2CMessage): unknown {
  const decode = jsonDecoder(msg);
  if (!decode) return undefined;
  try {
    return JSON.parse(decode(msg.body).replace(/^\uFEFF/, ''));
  } catch {
    return undefined;
  }
}

/** A device message as a storage endpoint writes it: IoT Hub's system properties by their storage names, the body as base64. */
function storageRecord(msg: D2CMessage, partition: number, enqueued: Date): StorageRecord {
  const stamps = connectionStamps(msg);
  const systemProperties = definedOnly({
    connectionDeviceId: msg.deviceId,
    connectionModuleId: msg.moduleId,
    connectionAuthMethod: stamps['iothub-connection-auth-method'],
    connectionDeviceGenerationId: msg.authGenerationId,
    contentType: msg.contentType,
    contentEncoding: msg.contentEncoding,
    messageId: msg.messageId,
    correlationId: msg.correlationId,
    userId: msg.userId,
    'dt-dataschema': msg.modelId,
    'dt-subject': msg.component,
    enqueuedTime: storageTime(enqueued),
  });
  // JSON encoding writes a body as JSON when it is JSON in UTF-8, as IoT Hub documents.
  const json = jsonDecoder(msg) === JSON_ENCODINGS['utf-8'];
  return {
    partition,
    enqueuedTimeUtc: storageTime(enqueued),
    properties: msg.properties,
    systemProperties,
    body: msg.body.toString('base64'),
    jsonBody: json,
  };
}

/** IoT Hub's time in routed blobs: seven fractional digits (`2019-05-10T06:06:32.7220000Z`). */
function storageTime(at: Date): string {
  return at.toISOString().replace('Z', '0000Z');
}

function identityName(key: Identity): string {
  return key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId;
}
