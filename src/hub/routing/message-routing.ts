import { randomUUID } from 'node:crypto';
import type { D2CMessage, D2CSink, EventLog } from '../events/event-log.js';
import { silentLog, type HubLog } from '../log.js';
import { compileRouteCondition, type RouteCondition, type RoutedMessageView } from '../query/route-condition.js';
import { NOTIFICATION_KINDS, type Notification } from './notifications.js';
import { SILENT_SOURCES, type EnrichmentSettings, type RoutingSettings, type RoutingSource } from './routing-settings.js';

interface Identity {
  deviceId: string;
  moduleId?: string;
}

/** What routing reads of an identity's twin: its tags and properties (IoT Hub's `$twin`). */
export type TwinOf = (key: Identity) => { tags: unknown; properties: { desired: unknown; reported: unknown } } | undefined;

interface CompiledRoute {
  name: string;
  condition: RouteCondition;
}

/**
 * IoT Hub's message routing in front of the built-in endpoint, the one endpoint the local hub serves.
 * A device message goes to the endpoint when an enabled DeviceMessages route's condition holds for
 * it, or, when none does, through the fallback route if that is enabled; otherwise it is dropped, as
 * on IoT Hub (the device's send still succeeds). IoT Hub's own events (twin changes, lifecycle,
 * connection state) go there only through a route of their source. Enrichments are stamped on
 * everything routed, as application properties.
 */
export class MessageRouting implements D2CSink {
  private readonly routes = new Map<RoutingSource, CompiledRoute[]>();
  private readonly fallback?: RouteCondition;
  private readonly enrichments: readonly EnrichmentSettings[];
  private readonly enrichWithTwin: boolean;

  /** Throws a HubError (400 SqlQueryInvalid) naming the route whose condition does not parse. */
  constructor(
    settings: RoutingSettings,
    private readonly events: EventLog,
    private readonly twinOf: TwinOf,
    private readonly hubName: string,
    private readonly log: HubLog = silentLog(),
    private readonly now: () => Date = () => new Date(),
  ) {
    for (const route of settings.routes) {
      if (!route.isEnabled) continue;
      const list = this.routes.get(route.source) ?? [];
      list.push({ name: route.name, condition: compiled(route.condition, `route '${route.name}'`) });
      this.routes.set(route.source, list);
    }
    if (settings.fallback.isEnabled) this.fallback = compiled(settings.fallback.condition, 'the fallback route');
    this.enrichments = settings.enrichments;
    this.enrichWithTwin = settings.enrichments.some((e) => e.value.startsWith('$twin.'));
  }

  /** What the hub says at start: the routes that are on, and those whose source it never emits. */
  describe(): string[] {
    const lines: string[] = [];
    for (const [source, routes] of this.routes) {
      const names = routes.map((r) => r.name).join(', ');
      lines.push(
        SILENT_SOURCES.has(source)
          ? `routes ${names} (${source}) get nothing: the local hub does not emit ${source}`
          : `routes ${names} send ${source} to the built-in endpoint`,
      );
    }
    lines.push(
      this.fallback ? 'the fallback route sends device messages no route takes to the built-in endpoint' : 'the fallback route is off',
    );
    return lines;
  }

  /** Whether a route may take events of this source: the hub builds none otherwise. */
  wants(source: Notification['source']): boolean {
    return this.routes.has(source);
  }

  async append(msg: D2CMessage): Promise<unknown> {
    const routed = this.route(msg);
    return routed && this.events.append(routed);
  }

  async appendMany(msgs: D2CMessage[]): Promise<unknown> {
    const routed = msgs.map((msg) => this.route(msg)).filter((msg) => msg !== undefined);
    return routed.length > 0 && this.events.appendMany(routed);
  }

  /**
   * Routes one of IoT Hub's own events. Called from the registry's, the twins' and presence's events: a
   * failure, to build the event or to store it, is logged and never reaches the operation that caused it.
   */
  notify(build: () => Notification): void {
    let notification: Notification;
    try {
      notification = build();
    } catch (err) {
      this.log.error('routing', `could not make an event to route: ${(err as Error)?.stack ?? err}`);
      return;
    }
    const routes = this.routes.get(notification.source);
    if (!routes) return;
    const kind = NOTIFICATION_KINDS[notification.source];
    const { deviceId, moduleId } = notification;
    const properties: Record<string, string> = {
      hubName: this.hubName,
      deviceId,
      ...(moduleId ? { moduleId } : {}),
      operationTimestamp: this.now().toISOString(),
      'iothub-message-schema': kind.schema,
      opType: notification.opType,
    };
    const correlationId = randomUUID().replaceAll('-', '').slice(0, 12);
    const view: RoutedMessageView = {
      system: {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        correlationId,
        userId: this.hubName,
        connectionDeviceId: deviceId,
        connectionModuleId: moduleId,
        enqueuedTime: properties.operationTimestamp,
      },
      app: properties,
      body: () => notification.body,
      twin: () => this.twinOf(notification),
    };
    const taken = this.firstMatch(routes, view);
    if (!taken) return;
    this.events
      .appendHubEvent({
        source: kind.messageSource,
        deviceId,
        ...(moduleId ? { moduleId } : {}),
        body: Buffer.from(JSON.stringify(notification.body)),
        correlationId,
        userId: this.hubName,
        properties: this.enriched(properties, notification),
      })
      .then(
        () =>
          this.log.debug('routing', `${kind.messageSource} ${notification.opType} of ${identityName(notification)} routed by '${taken}'`),
        (err: unknown) =>
          this.log.error(
            'routing',
            `could not store ${kind.messageSource} of ${identityName(notification)}: ${(err as Error)?.message ?? err}`,
          ),
      );
  }

  /** The message as the built-in endpoint gets it (enriched), or undefined when no route takes it. */
  private route(msg: D2CMessage): D2CMessage | undefined {
    const view = messageView(msg, this.twinOf, this.now);
    const taken =
      this.firstMatch(this.routes.get('DeviceMessages') ?? [], view) ?? (this.fallback?.matches(view) ? '$fallback' : undefined);
    if (!taken) {
      this.log.debug(
        'routing',
        `a message of ${identityName(msg)} matched no route and was dropped (the fallback route is off or did not hold)`,
      );
      return undefined;
    }
    return this.enrichments.length === 0 ? msg : { ...msg, properties: this.enriched(msg.properties, msg) };
  }

  /** The first route whose condition holds: one is enough, as a message reaches an endpoint once. */
  private firstMatch(routes: CompiledRoute[], view: RoutedMessageView): string | undefined {
    for (const route of routes) {
      try {
        if (route.condition.matches(view)) return route.name;
      } catch (err) {
        this.log.warn('routing', `route '${route.name}' could not be evaluated: ${(err as Error)?.message ?? err}`);
      }
    }
    return undefined;
  }

  /**
   * The properties with the enrichments stamped on. A twin path the twin lacks is stamped as written,
   * as IoT Hub does; a value that is not a string is stamped as its JSON.
   */
  private enriched(properties: Record<string, string>, sender: Identity): Record<string, string> {
    if (this.enrichments.length === 0) return properties;
    const twin = this.enrichWithTwin ? this.twinOf(sender) : undefined;
    const stamped = { ...properties };
    for (const { key, value } of this.enrichments) {
      if (value === '$iothubname') stamped[key] = this.hubName;
      else if (value.startsWith('$twin.')) {
        const found = readPath(twin, value.slice('$twin.'.length).split('.'));
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
function messageView(msg: D2CMessage, twinOf: TwinOf, now: () => Date): RoutedMessageView {
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
      enqueuedTime: now().toISOString(),
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

/** The body as JSON, when the message says it is: content type application/json, encoding UTF-8, -16 or -32. */
function jsonBody(msg: D2CMessage): unknown {
  if (msg.contentType?.split(';')[0]!.trim().toLowerCase() !== 'application/json') return undefined;
  const decode = JSON_ENCODINGS[msg.contentEncoding?.trim().toLowerCase() ?? ''];
  if (!decode) return undefined;
  try {
    return JSON.parse(decode(msg.body).replace(/^\uFEFF/, ''));
  } catch {
    return undefined;
  }
}

function readPath(doc: unknown, segments: string[]): unknown {
  let value = doc;
  for (const segment of segments) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

function identityName(key: Identity): string {
  return key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId;
}
